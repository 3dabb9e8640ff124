# syntax=docker/dockerfile:1
# collections-dialer: one image for every process (`dialer serve`, `dialer worker`,
# `dialer migrate`); docker-compose.yml shows them together. Settings come only from
# DIALER_* environment variables (see the README's configuration table).

# --- builder: build the wheel and install it with its dependencies into a venv ----------
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY strategy ./strategy
COPY adapters ./adapters
COPY dialer ./dialer
RUN /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/venv/bin/pip install /wheels/*.whl

# --- runtime: the venv only, no compiler, no sources, not root --------------------------
FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DIALER_HOST=0.0.0.0 \
    DIALER_PORT=8000 \
    DIALER_LOG_FORMAT=json
RUN groupadd --system --gid 10001 dialer \
 && useradd --system --uid 10001 --gid dialer --home-dir /app --shell /usr/sbin/nologin dialer \
 && mkdir /app && chown dialer:dialer /app
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# The slim image has no curl: probe with the standard library. HEALTHCHECK_URL overrides
# the target (the worker probes its metrics port instead of the API).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ.get('HEALTHCHECK_URL') or 'http://127.0.0.1:' + os.environ.get('DIALER_PORT', '8000') + '/healthz', timeout=4)"]
ENTRYPOINT ["dialer"]
CMD ["serve"]

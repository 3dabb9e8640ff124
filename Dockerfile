# syntax=docker/dockerfile:1
# collections-dialer: one image for every process (`dialer serve`, `dialer worker`,
# `dialer migrate`); docker-compose.yml shows them together. Settings come only from
# DIALER_* environment variables (see the README's configuration table).

# --- builder: build the wheel; install it and the locked dependencies into a venv ------
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# gcc compiles the strategy engine's hot modules with mypyc (setup.py, DIALER_MYPYC=1);
# the runtime stage needs no compiler for the built extensions.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
COPY pyproject.toml setup.py README.md ./
COPY requirements ./requirements
COPY strategy ./strategy
COPY adapters ./adapters
COPY dialer ./dialer
COPY demo ./demo
RUN python -m venv /opt/build \
 && /opt/build/bin/pip install --upgrade pip "setuptools>=69" wheel \
 && /opt/build/bin/pip install -c requirements/test.txt mypy pydantic types-PyYAML \
 && DIALER_MYPYC=1 /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
 && /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install -r requirements/runtime.txt \
 && /opt/venv/bin/pip install --no-deps /wheels/*.whl
RUN /opt/venv/bin/python -c "import strategy.engine as e; assert e.__file__.endswith('.so'), e.__file__"

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

"""What the Dockerfile and docker-compose.yml run, tested without Docker: every service
command is a real `dialer` subcommand with real options, every DIALER_* variable they set
is a setting, and the image's HEALTHCHECK command passes against a running `dialer serve`
(and fails once it has stopped). The server's log lines are JSON with phone numbers masked.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.main import get_command
from typer.testing import CliRunner

from dialer.cli.main import app as cli_app
from dialer.core.settings import Settings

ROOT = Path(__file__).parents[3]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
DIALER_SERVICES = sorted(name for name, s in SERVICES.items() if "build" in s)
DIALER_BIN = Path(sys.executable).with_name("dialer")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    logical = re.sub(
        r"\\\n", " ", "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))
    )
    out = []
    for line in logical.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def subcommands() -> set[str]:
    group = get_command(cli_app)
    return set(getattr(group, "commands", {}))


def env_names(service: dict[str, Any]) -> set[str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return {item.split("=", 1)[0] for item in env}
    return set(env)


# --- docker-compose.yml ------------------------------------------------------------------


def test_compose_has_the_production_services() -> None:
    assert {"postgres", "rabbitmq", "migrate", "api", "worker"} <= set(SERVICES)
    assert SERVICES["postgres"]["image"] == "postgres:16"
    assert SERVICES["rabbitmq"]["image"] == "rabbitmq:3.13-management"
    for name in ("postgres", "rabbitmq"):
        assert SERVICES[name]["healthcheck"]["test"], name
    assert DIALER_SERVICES == ["api", "migrate", "worker"]


def test_migrations_run_before_api_and_worker_start() -> None:
    assert SERVICES["migrate"]["command"] == ["migrate"]
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert SERVICES["migrate"].get("restart") == "no"
    for name in ("api", "worker"):
        deps = SERVICES[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["rabbitmq"]["condition"] == "service_healthy", name


@pytest.mark.parametrize("name", DIALER_SERVICES)
def test_each_service_command_is_a_real_dialer_subcommand(name: str) -> None:
    command = SERVICES[name]["command"]
    args = shlex.split(command) if isinstance(command, str) else list(command)
    if args[0] not in subcommands():
        if args[0] == "worker":
            pytest.skip("`dialer worker` is not in the CLI yet (dispatch is building it)")
        pytest.fail(f"service {name} runs `dialer {args[0]}`, which does not exist")
    # --help is eager, but Click parses every option first: an unknown one exits with 2.
    result = CliRunner().invoke(cli_app, [*args, "--help"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", DIALER_SERVICES)
def test_every_dialer_variable_a_service_sets_is_a_setting(name: str) -> None:
    known = {f"DIALER_{field.upper()}" for field in Settings.model_fields}
    names = env_names(SERVICES[name])
    dialer_names = {n for n in names if n.startswith("DIALER_")}
    assert dialer_names, f"{name} sets no DIALER_* variable"
    assert dialer_names <= known, sorted(dialer_names - known)
    assert names - dialer_names <= {"HEALTHCHECK_URL"}, sorted(names - dialer_names)


def test_services_reach_postgres_and_rabbitmq_by_their_service_names() -> None:
    for name in ("api", "worker", "migrate"):
        env = SERVICES[name]["environment"]
        assert env["DIALER_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in env["DIALER_DATABASE_URL"]
        if name != "migrate":
            assert env["DIALER_QUEUE_URL"].startswith("amqp://")
            assert "@rabbitmq:5672/" in env["DIALER_QUEUE_URL"]
    assert SERVICES["api"]["command"][:3] == ["serve", "--host", "0.0.0.0"]


def test_the_worker_probe_targets_its_own_metrics_port() -> None:
    env = SERVICES["worker"]["environment"]
    assert env["HEALTHCHECK_URL"] == f"http://127.0.0.1:{env['DIALER_WORKER_METRICS_PORT']}/metrics"


# --- Dockerfile --------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_slim_and_not_root() -> None:
    steps = dockerfile_instructions()
    froms = [args for word, args in steps if word == "FROM"]
    assert froms == ["python:3.11-slim AS builder", "python:3.11-slim AS runtime"]
    runtime = steps[[w for w, _ in steps].index("FROM", 1) :]
    assert any(w == "COPY" and a.startswith("--from=builder") for w, a in runtime)
    users = [a for w, a in runtime if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ("ENTRYPOINT", '["dialer"]') in runtime
    assert ("CMD", '["serve"]') in runtime
    assert json.loads(dict(runtime)["CMD"])[0] in subcommands()


def healthcheck_argv() -> list[str]:
    (args,) = [a for w, a in dockerfile_instructions() if w == "HEALTHCHECK"]
    argv = json.loads(args[args.index("CMD") + 3 :].strip())
    assert argv[0] == "python", "the slim image has python, not curl"
    return [sys.executable, *argv[1:]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def probe(port: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HEALTHCHECK_URL"}
    env["DIALER_PORT"] = str(port)
    return subprocess.run(healthcheck_argv(), env=env, capture_output=True, text=True, timeout=30)


@contextmanager
def dialer_serve(tmp_path: Path, **extra_env: str) -> Iterator[tuple[int, Path]]:
    """`dialer migrate` then `dialer serve` on a free port with a temporary SQLite file, as
    the image runs them; yields the port and the file the server's stderr goes to."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALER_")}
    env |= {
        "DIALER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'ops.db'}",
        "DIALER_PORT": str(port),
        "DIALER_LOG_FORMAT": "json",
    }
    env |= extra_env
    migrate = subprocess.run(
        [str(DIALER_BIN), "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert migrate.returncode == 0, migrate.stderr
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(DIALER_BIN), "serve", "--host", "127.0.0.1"], env=env, stderr=log, stdout=log
        )
        try:
            deadline = time.monotonic() + 60
            while probe(port).returncode != 0:  # waiting for a child process to listen
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.3)
            yield port, log_path
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.mark.parametrize("access_log", [True, False], ids=["access-log", "no-access-log"])
def test_the_image_healthcheck_passes_against_dialer_serve_and_fails_after_it_stops(
    tmp_path: Path, access_log: bool
) -> None:
    flag = "true" if access_log else "false"
    with dialer_serve(tmp_path, DIALER_ACCESS_LOG=flag) as (port, log_path):
        assert probe(port).returncode == 0
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert client.get("/readyz").json()["status"] == "ready"
            assert client.get("/metrics").status_code == 200
            phone = {"phone": "+8613812345678"}
            assert client.get("/v1/cases", params=phone).status_code == 401
    failed = probe(port)
    assert failed.returncode != 0
    entries = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    assert entries, "the server wrote no log line"
    assert all({"ts", "level", "logger", "message"} <= set(e) for e in entries)
    assert not any("color_message" in e for e in entries)  # no terminal escapes in JSON
    access = [e["message"] for e in entries if e["logger"] == "uvicorn.access"]
    if access_log:  # one line per request, the number in its query masked
        assert any("/v1/cases?phone=%2B86*********78" in m for m in access), access
    else:  # the default: no line per request
        assert access == []
        assert any(e["logger"] == "uvicorn.error" for e in entries)
    assert "13812345678" not in log_path.read_text()


# --- dialer worker -----------------------------------------------------------------------


@contextmanager
def dialer_worker(
    tmp_path: Path, metrics_port: int
) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """`dialer migrate` then `dialer worker` (in-process queue, no Twilio) on a temporary
    SQLite file; yields once the worker says it runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALER_")}
    env |= {
        "DIALER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'worker.db'}",
        "DIALER_WORKER_METRICS_PORT": str(metrics_port),
    }
    migrate = subprocess.run(
        [str(DIALER_BIN), "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert migrate.returncode == 0, migrate.stderr
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [str(DIALER_BIN), "worker"], env=env, stderr=log, stdout=log, text=True
        )
        try:
            deadline = time.monotonic() + 60
            while "running" not in log_path.read_text():  # waiting for a child process
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
            yield proc, log_path
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)


def test_dialer_worker_runs_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    if "worker" not in subcommands():
        pytest.skip("`dialer worker` is not in the CLI yet")
    with dialer_worker(tmp_path, 0) as (proc, log_path):
        proc.terminate()  # what `docker stop` sends
        assert proc.wait(timeout=60) == 0, log_path.read_text()


def test_the_compose_worker_healthcheck_passes_against_dialer_worker(tmp_path: Path) -> None:
    if "worker" not in subcommands():
        pytest.skip("`dialer worker` is not in the CLI yet")
    port = free_port()
    url = SERVICES["worker"]["environment"]["HEALTHCHECK_URL"].replace("9100", str(port))
    with dialer_worker(tmp_path, port):
        env = dict(os.environ, HEALTHCHECK_URL=url)
        result = subprocess.run(healthcheck_argv(), env=env, capture_output=True, timeout=30)
        assert result.returncode == 0, result.stderr

"""README "The service, step by step" (sections 1-7) run as a new user would paste it: every
`sh` block of the tour, in order, in one bash shell, in a fresh directory holding only the
project's `.venv` and `examples/` (links), on a fresh SQLite file, with `dialer serve` and
`dialer worker` in the background as the README starts them.

Only what cannot be shared on a busy machine is rewritten: the port (`localhost:8000`
becomes a free one; `DIALER_PORT` and `DIALER_PUBLIC_BASE_URL` follow it) and the `/tmp`
scratch files (into the test's own directory). Everything else is the README's text."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TOUR_START = "## The service, step by step"
TOUR_END = "### Roles"

pytestmark = pytest.mark.slow


def tour_blocks(readme: str) -> list[str]:
    """The `sh` blocks of the tour, in order."""
    tour = readme[readme.index(TOUR_START) : readme.index(TOUR_END)]
    return re.findall(r"```sh\n(.*?)```", tour, flags=re.DOTALL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _script(blocks: list[str], port: int, scratch: Path) -> str:
    def local(block: str) -> str:
        block = block.replace("localhost:8000", f"localhost:{port}")
        block = block.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        return re.sub(r"/tmp/(\w+\.json)", lambda m: str(scratch / m.group(1)), block)

    # A marker before each block, so a failure names it; `set -e` stops at the first
    # failing command, as a careful reader would.
    marked = [f"echo '=== block {i}'\n{local(b)}" for i, b in enumerate(blocks)]
    return "set -e -o pipefail\n" + "\n".join(marked) + "\necho '=== tour done'\n"


def test_the_readme_tour_runs_by_copy_paste(tmp_path: Path) -> None:
    blocks = tour_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 8, "the tour's shell blocks were not found"
    assert any("dialer worker" in b and "&" in b for b in blocks), "the worker runs in background"
    home = tmp_path / "fresh"
    home.mkdir()
    (home / ".venv").symlink_to(ROOT / ".venv")
    (home / "examples").symlink_to(ROOT / "examples")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALER_")}
    env |= {
        "DIALER_PORT": str(port),
        "DIALER_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "DIALER_LOG_FORMAT": "text",
        "DIALER_WORKER_METRICS_PORT": "0",
        "COLUMNS": "200",
    }
    script = tmp_path / "tour.sh"
    script.write_text(_script(blocks, port, tmp_path), encoding="utf-8")
    # Output to a file: the background serve and worker keep writing to it after the
    # script's last line (a pipe would wait for them).
    with (tmp_path / "tour.out").open("w") as sink:
        proc = subprocess.Popen(
            ["bash", str(script)],
            cwd=home,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its background serve and worker in its own group
        )
        try:
            proc.wait(timeout=600)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    out = (tmp_path / "tour.out").read_text(encoding="utf-8")
    assert proc.returncode == 0 and "=== tour done" in out, out[-6000:]

    # 1-2: keys, portfolios, the import and the re-import
    assert "0 created, 200 updated" in out, out[-6000:]
    # 3: a decision with its tier and refusals
    decision = _first_json(out, '"tier"')
    assert decision["tier"] and isinstance(decision["refused"], list)
    # 4: the draft's diff, the rejected document's violations
    assert '"clause"' in out
    # 5: assignment moved cases to their tier's team
    refresh = _first_json(out, '"reassigned"')
    assert refresh["cases"] > 0 and refresh["reassigned"] > 0, refresh
    assert re.search(r'"team": "team-\w+"', out), out[-3000:]
    # 6: the worker planned the campaign in the background; it dialled through the
    # simulator or (outside the window) waits for the next one, and says when
    status = out[out.rindex("=== block") :]
    assert re.search(r"plan_done\s+│?\s*True", status), status
    planned = int(re.search(r"planned\s+│?\s*(\d+)", status).group(1))  # type: ignore[union-attr]
    dispatched = int(re.search(r"dispatched\s+│?\s*(\d+)", status).group(1))  # type: ignore[union-attr]
    assert planned > 0, status
    assert dispatched > 0 or re.search(r"next_send_at\s+│?\s*20\d\d-", status), status
    log = (home / "worker.log").read_text(encoding="utf-8")
    assert "telephony: SimulatedTelephony" in log and "Traceback" not in log, log[-3000:]
    # the tour sets DIALER_CALLBACK_NUMBER: every script it dials can say a number to call
    assert "within the granted disclosure" not in out + log, out[-3000:]


def _first_json(out: str, key: str) -> dict[str, object]:
    """The first top-level JSON object printed (by jq, indented) that has `key`."""
    for match in re.finditer(r"^\{\n.*?^\}$", out, flags=re.DOTALL | re.MULTILINE):
        if key in match.group(0):
            found: dict[str, object] = json.loads(match.group(0))
            return found
    raise AssertionError(f"no JSON with {key} in the tour's output")

"""A closed-loop HTTP/1.1 load generator, run as its own process, and the helpers the
benches use to serve an app and measure it.

    python bench/httpload.py --port 8000 --connections 20 --seconds 5 \
        --header "Authorization: Bearer KEY" /v1/cases/ID/decision ...

Keeps `--connections` keep-alive connections busy for `--seconds` (after `--warm-up`
seconds not counted), cycling through the paths given, and prints one JSON line:
requests, rps, p50_ms, p99_ms, errors, and all_requests (the warm-up's included, to set
against the server's CPU time over the whole run). Raw asyncio streams on uvloop: an HTTP client
library would be the bottleneck on a small machine, and a separate process keeps the
generator's CPU out of the server's and out of the bench's own.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


# --- the generator (this file run as a process) -------------------------------------------
async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def generate(
    port: int, paths: list[str], headers: list[str], connections: int, seconds: float, warm: float
) -> dict[str, Any]:
    extra = "".join(f"{h}\r\n" for h in headers)
    raws = [f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode() for p in paths]
    cycle = itertools.cycle(raws)
    latencies: list[float] = []
    errors = 0
    sent = 0
    start = time.perf_counter()
    measure_from = start + warm
    stop = measure_from + seconds

    async def run() -> None:
        nonlocal errors, sent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (t0 := time.perf_counter()) < stop:
                status = await _request(reader, writer, next(cycle))
                sent += 1
                if t0 >= measure_from:
                    latencies.append(time.perf_counter() - t0)
                    errors += status >= 300
        finally:
            writer.close()

    await asyncio.gather(*(run() for _ in range(connections)))
    elapsed = time.perf_counter() - measure_from
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(latencies, 50),
        "p99_ms": pct(latencies, 99),
        "errors": errors,
        "all_requests": sent,
    }


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def _main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warm-up", type=float, default=1.0)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    found = asyncio.run(
        generate(args.port, args.paths, args.header, args.connections, args.seconds, args.warm_up)
    )
    print(json.dumps(found))


# --- helpers for the benches ---------------------------------------------------------------
def load(
    port: int, paths: list[str], headers: list[str], connections: int, seconds: float, warm: float
) -> dict[str, Any]:
    """Run the generator in its own process and return what it measured."""
    cmd = [sys.executable, str(Path(__file__)), "--port", str(port),
           "--connections", str(connections), "--seconds", str(seconds),
           "--warm-up", str(warm)]  # fmt: skip
    for h in headers:
        cmd += ["--header", h]
    out = subprocess.run([*cmd, *paths], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.returncode}")
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise SystemExit("server did not start")


def start(cmd: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **env})


if __name__ == "__main__":
    _main()

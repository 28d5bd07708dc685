"""What the benchmarks share: the emulator in its own process, one process per measured run,
rounds in turn (A B A B), medians, memory and CPU readings, and the printed table.

Every measured run happens in a fresh worker process (``python -m benchmarks.<name> --worker
SPEC``) that prints one JSON line: the sides never share an event loop, a connection pool, a
garbage collector or a memory high-water mark, and the emulator runs in a process of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "REPO",
    "EmulatorProcess",
    "Table",
    "base_parser",
    "cores",
    "cpu_now",
    "header",
    "in_turn",
    "machine",
    "median",
    "mib",
    "peak_rss",
    "percentile",
    "pin",
    "ratio",
    "reset_peak_rss",
    "rss",
    "run_worker",
    "serve_worker",
    "size_of",
]

REPO = Path(__file__).resolve().parent.parent
CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-secret"

Spec = dict[str, Any]
Result = dict[str, Any]


# --- command line -----------------------------------------------------------------------------


def base_parser(description: str, *, rounds: int) -> argparse.ArgumentParser:
    """``--smoke`` (seconds, for the test suite), ``--full`` (issue 7's sizes), ``--rounds``."""
    cli = argparse.ArgumentParser(description=description)
    size = cli.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="tiny sizes: a check that it runs")
    size.add_argument("--full", action="store_true", help="the full sizes of issue 7")
    cli.add_argument(
        "--rounds", type=int, help=f"rounds of every side, in turn (default {rounds}; smoke 1)"
    )
    cli.add_argument("--worker", help=argparse.SUPPRESS)
    return cli


def size_of(args: argparse.Namespace, *, smoke: Any, default: Any, full: Any) -> Any:
    """The value for the size the command line chose."""
    if args.smoke:
        return smoke
    return full if args.full else default


# --- worker processes -------------------------------------------------------------------------


def run_worker(module: str, spec: Spec, *, timeout: float = 600.0) -> Result:
    """Run one measured side in a fresh process; returns the JSON line it printed last."""
    command = [sys.executable, "-m", module, "--worker", json.dumps(spec)]
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"worker {module} {spec.get('side')} failed ({done.returncode}):\n{done.stderr[-3000:]}"
        )
    result: Result = json.loads(lines[-1])
    return result


def serve_worker(text: str, run: Callable[[Spec], Coroutine[Any, Any, Result]]) -> int:
    """The worker's side: run ``run(spec)`` in a fresh event loop, print its result as JSON.
    A ``cpu`` in the spec pins the worker to that core first."""
    spec = json.loads(text)
    if spec.get("cpu") is not None:
        pin(0, spec["cpu"])
    result: Result = asyncio.run(run(spec))
    print(json.dumps(result), flush=True)
    return 0


def cores() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def pin(pid: int, cpu: int) -> None:
    """Keep process ``pid`` (0: this one) on core number ``cpu`` of those allowed, if it can."""
    if not hasattr(os, "sched_setaffinity"):
        return
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) > 1:
        os.sched_setaffinity(pid, {allowed[cpu % len(allowed)]})


def in_turn(
    rounds: int, sides: Sequence[str], run: Callable[[str, int], Result]
) -> dict[str, list[Result]]:
    """Run every side once per round, in turn, so drift hits all sides alike; each round
    starts one side further on (A B C, B C A, C A B, ...), so that no side always runs
    first, right after the emulator's reset or the previous round's last side."""
    results: dict[str, list[Result]] = {side: [] for side in sides}
    for index in range(rounds):
        start = index % len(sides)
        for side in [*sides[start:], *sides[:start]]:
            results[side].append(run(side, index))
    return results


# --- the emulator -----------------------------------------------------------------------------


class EmulatorProcess:
    """``python -m miocreate_async.emulator`` in a process of its own, on a free port."""

    def __init__(self, *options: str, cpu: int | None = None) -> None:
        self.options = options
        #: The one core the emulator runs on, or None for any.
        self.cpu = cpu
        self.url = ""
        self._stderr: TextIO | None = None
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> EmulatorProcess:
        command = [
            sys.executable,
            "-m",
            "miocreate_async.emulator",
            "--port",
            "0",
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            CLIENT_SECRET,
            *self.options,
        ]
        self._stderr = tempfile.TemporaryFile("w+")  # closed in __exit__
        self._process = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=self._stderr, text=True
        )
        if self.cpu is not None:
            pin(self._process.pid, self.cpu)
        assert self._process.stdout is not None
        first = self._process.stdout.readline()
        if "http" not in first:
            self.__exit__(None, None, None)
            raise RuntimeError(f"the emulator did not start: {first!r}")
        self.url = first.split()[-1]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def _admin(self, method: str, name: str) -> Any:
        request = urllib.request.Request(f"{self.url}/_emulator/{name}", method=method)
        with urllib.request.urlopen(request, timeout=60) as reply:
            return json.load(reply)

    def ledger(self) -> dict[str, Any]:
        """Tasks, requests, uploads and credits since the last reset."""
        ledger: dict[str, Any] = self._admin("GET", "ledger")
        return ledger

    def reset(self) -> None:
        """Forget tasks, objects (files on disk too) and requests."""
        self._admin("POST", "reset")

    def cpu_seconds(self) -> float:
        """CPU time the emulator process has used (user + system), or NaN off Linux."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return math.nan
        # After the command name: state is field 3, utime 14, stime 15 (1-based, man proc).
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def spec(self) -> Spec:
        """What a worker needs to reach it."""
        return {"url": self.url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


# --- memory -----------------------------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss() -> int:
    """The process's resident memory now, in bytes (0 where /proc is missing)."""
    return (_status_kib("VmRSS") or 0) * 1024


def reset_peak_rss() -> bool:
    """Start a new high-water mark of resident memory (Linux: ``clear_refs`` 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def peak_rss() -> int:
    """The resident memory high-water mark since ``reset_peak_rss()`` (or the start), bytes."""
    peak = _status_kib("VmHWM")
    if peak is not None:
        return peak * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def mib(value: float) -> float:
    return value / (1024 * 1024)


# --- figures ----------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    clean = [value for value in values if not math.isnan(value)]
    return statistics.median(clean) if clean else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1), interpolated between the nearest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(ours: Sequence[float], theirs: Sequence[float]) -> float:
    """The median of the per-round ratios ``ours[i] / theirs[i]``: a round's sides ran back to
    back, so their ratio holds even when the machine's speed drifts between rounds."""
    return median([a / b for a, b in zip(ours, theirs, strict=True) if b])


class Table:
    """A plain-text table, columns aligned, numbers on the right; Markdown-compatible."""

    def __init__(self, *headers: str) -> None:
        self.headers = list(headers)
        self.rows: list[list[str]] = []

    def add(self, *cells: object) -> None:
        self.rows.append([_cell(cell) for cell in cells])

    def render(self) -> str:
        widths = [
            max(len(row[index]) for row in [self.headers, *self.rows])
            for index in range(len(self.headers))
        ]

        def line(cells: Sequence[str]) -> str:
            padded = [
                cell.ljust(width) if index == 0 else cell.rjust(width)
                for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
            ]
            return "| " + " | ".join(padded) + " |"

        rule = (
            "|"
            + "|".join(
                "-" * (width + 1) + (":" if index else "-") for index, width in enumerate(widths)
            )
            + "|"
        )
        return "\n".join([line(self.headers), rule, *(line(row) for row in self.rows)])


def _cell(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def machine() -> str:
    """Where and when the figures were taken: CPU, cores, Python, aiohttp, date."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import aiohttp

    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{model}, nproc={cores()}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}, {today}"
    )


def header(title: str, args: argparse.Namespace, detail: str) -> None:
    size = "smoke" if args.smoke else ("full" if args.full else "default")
    print(f"## {title} ({size} size)")
    print(f"machine: {machine()}")
    print(detail)
    print(flush=True)


def cpu_now() -> float:
    """User + system CPU seconds of this process, all threads."""
    return time.process_time()


#: The paths a hand-written client copies from the provider's page.
RAW_PATHS = {
    "token": "/v1/oauth/token",
    "upload_url": "/v1/source/upload-url",
    "image": "/v1/task/face-swap",
    "video": "/v1/task/video-face-swap",
    "detail": "/v1/task/detail",
}


async def raw_api(session: Any, spec: Spec) -> Callable[[str, dict[str, Any]], Awaitable[Any]]:
    """What a user writes by hand from the page with bare aiohttp: a token fetched once, then
    JSON POSTs whose envelope ``code`` is checked; no retries."""
    url = spec["url"]
    credentials = {"client_id": spec["client_id"], "client_secret": spec["client_secret"]}
    async with session.post(url + RAW_PATHS["token"], json=credentials) as reply:
        token = (await reply.json())["data"]["access_token"]
    headers = {"Authorization": f"Bearer {token}"}

    async def api(path: str, body: dict[str, Any]) -> Any:
        async with session.post(url + path, json=body, headers=headers) as reply:
            envelope = await reply.json()
        if envelope["code"] != 200:
            raise RuntimeError(f"code {envelope['code']}: {envelope.get('message')}")
        return envelope["data"]

    return api

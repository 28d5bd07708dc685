"""Upload: one large file PUT through ``upload()``, bare aiohttp and ``curl -T``.

The file is a sparse MP4 (a valid header, then zeros the file system does not store), so the
disk is out of the way on the sending side; the emulator keeps what it receives in
``/dev/shm`` where there is room (the disk's write-back would otherwise set the pace) and
hashes it. Each side runs in a fresh process against one emulator process, which is reset
after every run, so the copies do not pile up.

* ``upload()``: ``await mc.upload(path)``: checks, an upload URL, one streamed PUT;
* bare aiohttp: an upload URL, then ``session.put(url, data=open(path, "rb"))``, aiohttp's own
  streaming of a file object, as its documentation shows;
* curl: an upload URL, then ``curl -T path URL``, where curl exists.

Figures: throughput (the upload URL request included, the token exchange not), the peak growth
of the process's resident memory over the upload (Linux: the high-water mark is reset first),
the client's CPU time per GiB, and how busy the emulator was.

    python -m benchmarks.upload [--smoke | --full] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks._common import (
    REPO,
    EmulatorProcess,
    Table,
    base_parser,
    cpu_now,
    header,
    in_turn,
    median,
    mib,
    peak_rss,
    ratio,
    reset_peak_rss,
    rss,
    run_worker,
    serve_worker,
    size_of,
)

if TYPE_CHECKING:  # for the type only: each side imports its library in its own worker
    from miocreate_async import MioCreate

TOKEN_PATH = "/v1/oauth/token"
UPLOAD_URL_PATH = "/v1/source/upload-url"


# --- the measured sides (worker processes) ----------------------------------------------------


async def _miocreate(spec: dict[str, Any]) -> dict[str, Any]:
    from miocreate_async import MioCreate

    async with MioCreate(spec["client_id"], spec["client_secret"], base_url=spec["url"]) as mc:
        await mc.get_upload_url("warm-up.mp4")  # the token and a connection, before the clock
        return await _timed_upload(mc, spec["path"])


async def _timed_upload(mc: MioCreate, path: str) -> dict[str, Any]:
    """``mc.upload(path)`` on the clock: time, CPU and memory (the same for every target)."""
    baseline, cpu = rss(), cpu_now()
    reset_peak_rss()
    start = time.perf_counter()
    await mc.upload(path)
    elapsed = time.perf_counter() - start
    return _figures(elapsed, cpu_now() - cpu, baseline, peak_rss())


def _figures(elapsed: float, cpu: float, baseline: int, peak: int) -> dict[str, Any]:
    return {"elapsed": elapsed, "cpu": cpu, "peak_rss": peak, "growth": peak - baseline}


async def _token(session: Any, spec: dict[str, Any]) -> dict[str, str]:
    credentials = {"client_id": spec["client_id"], "client_secret": spec["client_secret"]}
    async with session.post(spec["url"] + TOKEN_PATH, json=credentials) as reply:
        token = (await reply.json())["data"]["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def _upload_url(session: Any, spec: dict[str, Any], headers: dict[str, str]) -> str:
    body = {"file_name": os.path.basename(spec["path"])}
    async with session.post(spec["url"] + UPLOAD_URL_PATH, json=body, headers=headers) as reply:
        envelope = await reply.json()
    if envelope["code"] != 200:
        raise RuntimeError(f"code {envelope['code']}: {envelope.get('message')}")
    return str(envelope["data"]["upload_url"])


async def _aiohttp(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        headers = await _token(session, spec)
        await _upload_url(session, spec, headers)  # a warm connection, as the others have
        baseline, cpu = rss(), cpu_now()
        reset_peak_rss()
        start = time.perf_counter()
        url = await _upload_url(session, spec, headers)
        with open(spec["path"], "rb") as file:
            async with session.put(url, data=file) as reply:
                if reply.status != 200:
                    raise RuntimeError(f"HTTP {reply.status}: {await reply.text()}")
        elapsed = time.perf_counter() - start
        return _figures(elapsed, cpu_now() - cpu, baseline, peak_rss())


async def _curl(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        headers = await _token(session, spec)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        url = await _upload_url(session, spec, headers)
        if spec.get("sink"):
            url = spec["sink"] + "/large.mp4"
        process = await asyncio.create_subprocess_exec(
            "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-T", spec["path"], url,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        output, _ = await process.communicate()
        elapsed = time.perf_counter() - start
        if process.returncode != 0 or output.strip() != b"200":
            raise RuntimeError(f"curl failed: {process.returncode} {output!r}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    # curl's whole peak: its baseline is not known from outside, so growth is not told apart.
    peak = after.ru_maxrss * 1024
    return {"elapsed": elapsed, "cpu": cpu, "peak_rss": peak, "growth": None}


async def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    sides = {"upload()": _miocreate, "aiohttp": _aiohttp, "curl -T": _curl}
    if spec.get("sink"):
        sides = {"upload()": _miocreate_to_sink, "aiohttp": _aiohttp_to_sink, "curl -T": _curl}
    return await sides[spec["side"]](spec)


# --- the same PUTs to a plain socket sink -------------------------------------------------------
# The emulator hashes and stores what it receives on one core, and was the slower end: a sink
# that only reads (``recv_into`` one buffer, in a process of its own) shows the senders' limit.


async def _miocreate_to_sink(spec: dict[str, Any]) -> dict[str, Any]:
    """``upload()`` itself, told the sink's URL where the API would give a presigned one."""
    from miocreate_async import MioCreate, UploadTarget

    async with MioCreate(spec["client_id"], spec["client_secret"], base_url=spec["url"]) as mc:

        async def sink_target(file_name: str) -> UploadTarget:
            return UploadTarget(upload_url=spec["sink"] + "/" + file_name, key=file_name)

        await mc.get_upload_url("warm-up.mp4")  # the token, as in the other runs
        mc.get_upload_url = sink_target  # type: ignore[method-assign]
        return await _timed_upload(mc, spec["path"])


async def _aiohttp_to_sink(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        baseline, cpu = rss(), cpu_now()
        reset_peak_rss()
        start = time.perf_counter()
        with open(spec["path"], "rb") as file:
            async with session.put(spec["sink"] + "/large.mp4", data=file) as reply:
                if reply.status != 200:
                    raise RuntimeError(f"HTTP {reply.status}")
        elapsed = time.perf_counter() - start
        return _figures(elapsed, cpu_now() - cpu, baseline, peak_rss())


def _sink() -> int:
    """``python -m benchmarks.upload --sink``: answer 200 to every PUT, keeping nothing."""
    server = socket.create_server(("127.0.0.1", 0))
    print(f"http://127.0.0.1:{server.getsockname()[1]}", flush=True)
    while True:
        connection, _ = server.accept()
        threading.Thread(target=_drain, args=(connection,), daemon=True).start()


def _drain(connection: socket.socket) -> None:
    buffer = memoryview(bytearray(1024 * 1024))
    with connection:
        pending = b""
        while True:
            while b"\r\n\r\n" not in pending:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                pending += chunk
            head, _, pending = pending.partition(b"\r\n\r\n")
            fields = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:])
            }
            if b"100-continue" in fields.get(b"expect", b"").lower():
                connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            left = int(fields.get(b"content-length", b"0")) - len(pending)
            pending = b""
            while left > 0:
                received = connection.recv_into(buffer[: min(left, len(buffer))])
                if not received:
                    return
                left -= received
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


class _SinkProcess:
    """The sink in a process of its own, with its CPU time read as the emulator's is."""

    def __enter__(self) -> _SinkProcess:
        command = [sys.executable, "-m", "benchmarks.upload", "--sink"]
        self._process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.__exit__()
            raise RuntimeError("the sink did not start")
        return self

    def __exit__(self, *_: object) -> None:
        self._process.kill()
        self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the driver -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    cli = base_parser(__doc__ or "", rounds=5)
    cli.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    args = cli.parse_args(argv)
    if args.worker:
        return serve_worker(args.worker, _worker)
    if args.sink:
        return _sink()
    from miocreate_async.emulator import write_sample_video

    size = size_of(args, smoke=4, default=100, full=500) * 1024 * 1024
    rounds = args.rounds or size_of(args, smoke=1, default=5, full=7)
    sides = ["upload()", "aiohttp"] + (["curl -T"] if shutil.which("curl") else [])
    header(
        "Upload: one streamed PUT",
        args,
        f"a {mib(size):.0f} MiB sparse MP4; {rounds} rounds of {' / '.join(sides)} in turn, "
        "each run in a fresh process; medians."
        + ("" if "curl -T" in sides else " (curl not found: its side is left out)"),
    )
    with (
        tempfile.TemporaryDirectory(prefix="miocreate-bench-") as directory,
        tempfile.TemporaryDirectory(prefix="miocreate-bench-", dir=_memory_dir(size)) as stored,
    ):
        path = write_sample_video(Path(directory, "large.mp4"), duration=60.0, size=size)
        with EmulatorProcess("--seed", "1", "--data-dir", stored) as emulator:

            def run(side: str, _: int) -> dict[str, Any]:
                spec = {**emulator.spec(), "side": side, "path": str(path)}
                before = emulator.cpu_seconds()
                result = run_worker("benchmarks.upload", spec)
                result["emulator_cpu"] = emulator.cpu_seconds() - before
                emulator.reset()  # deletes the stored copy
                return result

            results = in_turn(rounds, sides, run)
            _report(results, size, "the emulator")
            with _SinkProcess() as sink:

                def to_sink(side: str, _: int) -> dict[str, Any]:
                    spec = {**emulator.spec(), "side": side, "path": str(path), "sink": sink.url}
                    before = sink.cpu_seconds()
                    result = run_worker("benchmarks.upload", spec)
                    result["emulator_cpu"] = sink.cpu_seconds() - before
                    return result

                print()
                _report(in_turn(rounds, sides, to_sink), size, "a plain socket sink")
    return 0


def _memory_dir(size: int) -> str | None:
    """A RAM-backed directory for the emulator's copies (``/dev/shm``) when it has room, so the
    disk's write-back does not set the pace; None (the default temporary dir) otherwise."""
    try:
        free = shutil.disk_usage("/dev/shm").free
    except OSError:
        return None
    return "/dev/shm" if free > 4 * size else None


def _report(results: dict[str, list[dict[str, Any]]], size: int, receiver: str) -> None:
    print(f"To {receiver}:\n")
    receiver_cpu = "emulator CPU s/GiB" if receiver == "the emulator" else "sink CPU s/GiB"
    table = Table(
        "side",
        "MiB/s",
        "vs upload()",
        "upload() vs it",
        "peak RSS MiB",
        "RSS growth MiB",
        "client CPU s/GiB",
        receiver_cpu,
    )
    gib = size / 1024**3

    def speeds(side: str) -> list[float]:
        return [mib(size) / run["elapsed"] for run in results[side]]

    ours = speeds("upload()")
    for side, runs in results.items():
        growths = [run["growth"] for run in runs if run["growth"] is not None]
        table.add(
            side,
            median(speeds(side)),
            f"{ratio(speeds(side), ours):.3f}x",
            f"{ratio(ours, speeds(side)):.3f}x",
            mib(median([run["peak_rss"] for run in runs])),
            mib(median(growths)) if growths else "n/a (whole process)",
            median([run["cpu"] / gib for run in runs]),
            median([run["emulator_cpu"] / gib for run in runs]),
        )
    print(table.render(), end="\n\n")
    versus_aiohttp = ratio(ours, speeds("aiohttp"))
    growth = mib(max(run["growth"] for run in results["upload()"]))
    lines = [
        f"to {receiver}: upload() throughput {versus_aiohttp:.3f}x bare aiohttp's (target >= 0.9x: "
        f"{'met' if versus_aiohttp >= 0.9 else 'MISSED'})",
        f"upload() memory growth at most {growth:.1f} MiB over the rounds (target < 16 MB: "
        f"{'met' if growth * 1.048576 < 16 else 'MISSED'})",
    ]
    if "curl -T" in results:
        versus_curl = ratio(ours, speeds("curl -T"))
        cpu_versus_curl = ratio(
            [run["cpu"] for run in results["upload()"]], [run["cpu"] for run in results["curl -T"]]
        )
        lines[1:1] = [
            f"to {receiver}: upload() throughput {versus_curl:.3f}x curl's (target >= 0.9x: "
            f"{'met' if versus_curl >= 0.9 else 'MISSED'})",
            f"upload() client CPU per GiB {cpu_versus_curl:.2f}x curl's (target <= 1.5x: "
            f"{'met' if cpu_versus_curl <= 1.5 else 'MISSED'})",
        ]
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())

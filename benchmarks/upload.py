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

import asyncio
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import (
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

TOKEN_PATH = "/v1/oauth/token"
UPLOAD_URL_PATH = "/v1/source/upload-url"


# --- the measured sides (worker processes) ----------------------------------------------------


async def _miocreate(spec: dict[str, Any]) -> dict[str, Any]:
    from miocreate_async import MioCreate

    async with MioCreate(spec["client_id"], spec["client_secret"], base_url=spec["url"]) as mc:
        await mc.get_upload_url("warm-up.mp4")  # the token and a connection, before the clock
        baseline, cpu = rss(), cpu_now()
        reset_peak_rss()
        start = time.perf_counter()
        await mc.upload(spec["path"])
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
    return await sides[spec["side"]](spec)


# --- the driver -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    cli = base_parser(__doc__ or "", rounds=5)
    args = cli.parse_args(argv)
    if args.worker:
        return serve_worker(args.worker, _worker)
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
    return _report(results, size)


def _memory_dir(size: int) -> str | None:
    """A RAM-backed directory for the emulator's copies (``/dev/shm``) when it has room, so the
    disk's write-back does not set the pace; None (the default temporary dir) otherwise."""
    try:
        free = shutil.disk_usage("/dev/shm").free
    except OSError:
        return None
    return "/dev/shm" if free > 4 * size else None


def _report(results: dict[str, list[dict[str, Any]]], size: int) -> int:
    table = Table(
        "side",
        "MiB/s",
        "vs upload()",
        "upload() vs it",
        "peak RSS MiB",
        "RSS growth MiB",
        "client CPU s/GiB",
        "emulator CPU s/GiB",
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
        f"upload() throughput {versus_aiohttp:.3f}x bare aiohttp's (target >= 0.9x: "
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
            f"upload() throughput {versus_curl:.3f}x curl's (target >= 0.9x: "
            f"{'met' if versus_curl >= 0.9 else 'MISSED'})",
            f"upload() client CPU per GiB {cpu_versus_curl:.2f}x curl's (target <= 1.5x: "
            f"{'met' if cpu_versus_curl <= 1.5 else 'MISSED'})",
        ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

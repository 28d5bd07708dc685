"""Call overhead: ``get_task`` through MioCreate versus the same request by hand.

N task-detail calls at a fixed concurrency, three ways, each in a fresh process against one
emulator process: ``MioCreate.get_task`` (typed result, retries, auth), bare aiohttp and
``httpx.AsyncClient``, both written as a user would (one session, a token fetched once, the
envelope's code checked). Two tasks are asked about: one still processing (what polling
sees) and one that succeeded (its result is converted to a typed object).

Wall time is what users feel; the client's CPU time per call is its own cost, the figure that
stays meaningful when the emulator, on the other core, is the slower end.

    python -m benchmarks.call_overhead [--smoke | --full] [--rounds N]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
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
    ratio,
    run_worker,
    serve_worker,
    size_of,
)

SIDES = ("miocreate", "aiohttp", "httpx")
DETAIL_PATH = "/v1/task/detail"
TOKEN_PATH = "/v1/oauth/token"


# --- the measured sides (worker processes) ----------------------------------------------------


async def _measure(call: Callable[[], Awaitable[Any]], calls: int, concurrency: int) -> Any:
    """``calls`` calls by ``concurrency`` loops; one warm-up call per loop opens the pool."""
    await asyncio.gather(*(call() for _ in range(concurrency)))
    each = max(1, calls // concurrency)

    async def loop() -> None:
        for _ in range(each):
            await call()

    cpu, start = cpu_now(), time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return {
        "elapsed": time.perf_counter() - start,
        "cpu": cpu_now() - cpu,
        "calls": each * concurrency,
    }


async def _miocreate(spec: dict[str, Any]) -> Any:
    from miocreate_async import MioCreate

    task_id = spec["task_id"]
    async with MioCreate(spec["client_id"], spec["client_secret"], base_url=spec["url"]) as mc:

        async def call() -> object:
            return (await mc.get_task(task_id)).status

        return await _measure(call, spec["calls"], spec["concurrency"])


async def _aiohttp(spec: dict[str, Any]) -> Any:
    import aiohttp

    url, body = spec["url"], {"id": spec["task_id"]}
    async with aiohttp.ClientSession() as session:
        credentials = {"client_id": spec["client_id"], "client_secret": spec["client_secret"]}
        async with session.post(url + TOKEN_PATH, json=credentials) as reply:
            token = (await reply.json())["data"]["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        async def call() -> object:
            async with session.post(url + DETAIL_PATH, json=body, headers=headers) as reply:
                envelope = await reply.json()
            if envelope["code"] != 200:
                raise RuntimeError(f"code {envelope['code']}: {envelope.get('message')}")
            return envelope["data"]["status"]

        return await _measure(call, spec["calls"], spec["concurrency"])


async def _httpx(spec: dict[str, Any]) -> Any:
    import httpx

    url, body = spec["url"], {"id": spec["task_id"]}
    async with httpx.AsyncClient() as client:
        credentials = {"client_id": spec["client_id"], "client_secret": spec["client_secret"]}
        token = (await client.post(url + TOKEN_PATH, json=credentials)).json()["data"][
            "access_token"
        ]
        headers = {"Authorization": f"Bearer {token}"}

        async def call() -> object:
            envelope = (await client.post(url + DETAIL_PATH, json=body, headers=headers)).json()
            if envelope["code"] != 200:
                raise RuntimeError(f"code {envelope['code']}: {envelope.get('message')}")
            return envelope["data"]["status"]

        return await _measure(call, spec["calls"], spec["concurrency"])


async def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    sides = {"miocreate": _miocreate, "aiohttp": _aiohttp, "httpx": _httpx}
    result: dict[str, Any] = await sides[spec["side"]](spec)
    return result


# --- the driver -------------------------------------------------------------------------------


async def _make_tasks(url: str) -> dict[str, int]:
    """A succeeded image swap and a video swap that stays processing (its latency is 1 h)."""
    from benchmarks._common import CLIENT_ID, CLIENT_SECRET
    from miocreate_async import MioCreate
    from miocreate_async.emulator import write_sample_face, write_sample_photo, write_sample_video

    with tempfile.TemporaryDirectory() as tmp:
        photo = write_sample_photo(Path(tmp, "photo.jpg"))
        face = write_sample_face(Path(tmp, "face.png"))
        video = write_sample_video(Path(tmp, "clip.mp4"))
        async with MioCreate(CLIENT_ID, CLIENT_SECRET, base_url=url) as mc:
            photo_key, face_key, video_key = [await mc.upload(p) for p in (photo, face, video)]
            done = await mc.create_image_swap(photo_key, face_key)
            await mc.wait(done, timeout=30)
            pending = await mc.create_video_swap(video_key, face_key)
    return {"processing": pending.id, "succeeded": done.id}


def main(argv: Sequence[str] | None = None) -> int:
    cli = base_parser(__doc__ or "", rounds=9)
    args = cli.parse_args(argv)
    if args.worker:
        return serve_worker(args.worker, _worker)
    calls = size_of(args, smoke=200, default=3_000, full=10_000)
    concurrency = size_of(args, smoke=8, default=16, full=16)
    rounds = args.rounds or size_of(args, smoke=1, default=9, full=15)
    header(
        "Call overhead: get_task",
        args,
        f"{calls} task-detail calls ({max(concurrency * 10, calls // 5)} for httpx), "
        f"{concurrency} at a time; {rounds} rounds of {' / '.join(SIDES)} in turn, each run in "
        "a fresh process; the emulator pinned to one core, the client to the other; medians "
        "(ratios: the median of the rounds' ratios).",
    )
    verdicts: list[str] = []
    # One core each: the scheduler moving either process about is the largest noise here.
    with EmulatorProcess("--latency", "image=0.05,video=3600", "--seed", "1", cpu=0) as emulator:
        tasks = asyncio.run(_make_tasks(emulator.url))
        for state, task_id in tasks.items():

            def run(side: str, _: int, task_id: int = task_id) -> dict[str, Any]:
                spec = {
                    **emulator.spec(),
                    "side": side,
                    "task_id": task_id,
                    # httpx is ten times slower per call: fewer calls give the same figures.
                    "calls": calls if side != "httpx" else max(concurrency * 10, calls // 5),
                    "concurrency": concurrency,
                    "cpu": 1,
                }
                before = emulator.cpu_seconds()
                result = run_worker("benchmarks.call_overhead", spec)
                result["emulator_cpu"] = emulator.cpu_seconds() - before
                return result

            results = in_turn(rounds, SIDES, run)
            verdicts += _report(state, results)
    print("\n".join(verdicts))
    return 0


def _report(state: str, results: dict[str, list[dict[str, Any]]]) -> list[str]:
    table = Table(
        f"task {state}",
        "calls/s",
        "wall us/call",
        "client CPU us/call",
        "time vs aiohttp",
        "CPU vs aiohttp",
        "emulator CPU us/call",
    )

    def per_call(side: str, field: str) -> list[float]:
        return [run[field] / run["calls"] * 1e6 for run in results[side]]

    for side in SIDES:
        wall, cpu = per_call(side, "elapsed"), per_call(side, "cpu")
        table.add(
            side,
            1e6 / median(wall),
            median(wall),
            median(cpu),
            f"{ratio(wall, per_call('aiohttp', 'elapsed')):.3f}x",
            f"{ratio(cpu, per_call('aiohttp', 'cpu')):.3f}x",
            median(per_call(side, "emulator_cpu")),
        )
    print(table.render(), end="\n\n", flush=True)
    ours = per_call("miocreate", "elapsed")
    versus_aiohttp = ratio(ours, per_call("aiohttp", "elapsed"))
    versus_httpx = ratio(ours, per_call("httpx", "elapsed"))
    return [
        f"task {state}: MioCreate {versus_aiohttp:.3f}x bare aiohttp's time (target <= 1.05x: "
        f"{'met' if versus_aiohttp <= 1.05 else 'MISSED'}); {versus_httpx:.3f}x httpx's "
        f"(target < 1: {'met' if versus_httpx < 1 else 'MISSED'})"
    ]


if __name__ == "__main__":
    sys.exit(main())

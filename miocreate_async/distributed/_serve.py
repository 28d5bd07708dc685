"""A worker process's life: run until the first Ctrl-C (or SIGTERM), then drain; a second one
stops at once (the jobs still in flight are taken over by other workers when their lease ends).
"""

from __future__ import annotations

import signal

import anyio

from ._worker import Worker

__all__ = ["serve"]


async def serve(worker: Worker) -> None:
    drain = anyio.Event()
    async with anyio.create_task_group() as group:

        async def signals() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
                async for _ in received:
                    if drain.is_set():
                        print("stopping now; jobs in flight are taken over after their lease")
                        group.cancel_scope.cancel()
                        return
                    print(
                        "draining: no new jobs; jobs being polled go back to the queue, uploads "
                        "and submissions finish first (Ctrl-C again to stop at once)",
                        flush=True,
                    )
                    drain.set()

        group.start_soon(signals)
        print(f"worker {worker.name}: {worker.concurrency} jobs at once; Ctrl-C drains", flush=True)
        await worker.run(drain)
        group.cancel_scope.cancel()

"""A single swap interrupted after its task was created names that task (review case 5): the
library's cancellation stays a cancellation, with a ``SwapInterrupted`` as its cause; the CLI's
Ctrl-C says the task id on stderr and in ``--json``, and ``miocreate task`` collects it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from miocreate_async import ImageSwapResult, SwapInterrupted
from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = pytest.mark.processes

CLI = "import sys; from miocreate_async._cli import main; sys.exit(main())"
#: Seconds a task takes: long enough to interrupt it, short enough to collect it.
TASK_SECONDS = 2.0


def task_ids(emulator: Emulator) -> list[int]:
    return [int(task["id"]) for task in emulator.ledger["tasks"]]


async def created(emulator: Emulator) -> int:
    with anyio.fail_after(30):
        while not task_ids(emulator):  # noqa: ASYNC110 - the emulator's ledger
            await anyio.sleep(0.02)
    (task_id,) = task_ids(emulator)
    return task_id


@pytest.mark.anyio
async def test_a_cancelled_swap_image_names_its_task_and_stays_a_cancellation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    photo = write_sample_photo(tmp_path / "photo.jpg", seed=1)
    face = write_sample_face(tmp_path / "face.png", seed=1)
    async with (
        Emulator(data_dir=tmp_path / "emulator", latency=TASK_SECONDS) as emulator,
        emulator.client() as client,
    ):
        swap = asyncio.create_task(client.swap_image(photo, face))
        task_id = await created(emulator)
        swap.cancel()
        with pytest.raises(asyncio.CancelledError) as raised:
            await swap
        interrupted = SwapInterrupted.of(raised.value)
        assert interrupted is not None
        assert interrupted.task_id == task_id
        assert f"task {task_id}" in caplog.text
        # Inside a cancel scope the cancellation is still the scope's own: swallowed there.
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(client.swap_image, photo, face)
                while len(task_ids(emulator)) < 2:  # noqa: ASYNC110 - the emulator's ledger
                    await anyio.sleep(0.02)
                scope.cancel()
        assert scope.cancelled_caught
        result = await client.wait(interrupted.task_id)
        assert isinstance(result, ImageSwapResult)
        assert result.size > 0
        assert len(task_ids(emulator)) == 2


@pytest.fixture
def served() -> Iterator[Emulator]:
    with Emulator(latency=TASK_SECONDS, seed=3).run_in_thread() as emulator:
        yield emulator


def test_ctrl_c_during_miocreate_swap_says_the_task_and_task_wait_collects_it(
    served: Emulator, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "MIOCREATE_BASE_URL": served.url,
        "MIOCREATE_CLIENT_ID": served.client_id,
        "MIOCREATE_CLIENT_SECRET": served.client_secret,
    }
    photo = write_sample_photo(tmp_path / "photo.jpg", seed=1)
    face = write_sample_face(tmp_path / "face.png", seed=1)
    out = tmp_path / "out.jpg"
    command = [sys.executable, "-c", CLI, "--json", "swap", photo, "--face", face, "-o", out]
    swap = subprocess.Popen(
        list(map(str, command)), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while not task_ids(served) and time.monotonic() < deadline:
            time.sleep(0.02)
        (task_id,) = task_ids(served)
        swap.send_signal(signal.SIGINT)
        stdout, stderr = swap.communicate(timeout=30)
    finally:
        if swap.poll() is None:
            swap.kill()
            swap.wait()
    assert swap.returncode == 130
    error = json.loads(stdout)["error"]
    assert error["type"] == "SwapInterrupted"
    assert error["task_id"] == task_id
    assert f"miocreate task {task_id} --wait -o" in stderr.decode()
    assert not out.exists()

    collect = [sys.executable, "-c", CLI, "task", str(task_id), "--wait", "-o", str(out)]
    done = subprocess.run(collect, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 0
    assert task_ids(served) == [task_id]  # collected, not created again

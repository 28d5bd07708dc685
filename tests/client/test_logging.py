"""``MIOCREATE_LOG`` switches the library's log on, as a user's script sees it: requests and
retries at debug, one line per call at info; secrets and signatures never shown."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from miocreate_async.emulator import Emulator

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from miocreate_async import MioCreate

    async def main() -> None:
        async with MioCreate() as mc:
            result = await mc.swap_image(sys.argv[1], face=sys.argv[2])
            await result.read()

    asyncio.run(main())
    """
)


def run_script(served: Emulator, level: str, *args: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MIOCREATE_BASE_URL": served.url,
        "MIOCREATE_CLIENT_ID": served.client_id,
        "MIOCREATE_CLIENT_SECRET": served.client_secret,
        "MIOCREATE_LOG": level,
    }
    env.pop("MIOCREATE_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.processes
def test_miocreate_log_shows_requests_and_retries_redacted(
    miocreate_emulator: Emulator, sample_photo: Path, sample_face: Path
) -> None:
    miocreate_emulator.scenario("task_detail", code=500, count=1)
    done = run_script(miocreate_emulator, "debug", sample_photo, sample_face)
    assert done.returncode == 0, done.stderr
    log = done.stderr
    assert "POST" in log
    assert "/v1/source/upload-url" in log
    assert "PUT" in log  # the upload to storage
    assert "retry" in log.lower()
    assert "500" in log  # the reason of the retry
    assert miocreate_emulator.client_secret not in log
    assert "X-Amz-Signature=[redacted]" in log or "X-Amz-Signature" not in log
    assert "Bearer" not in log

    quiet = run_script(miocreate_emulator, "info", sample_photo, sample_face)
    assert quiet.returncode == 0, quiet.stderr
    assert "/v1/source/upload-url" not in quiet.stderr  # requests are debug
    assert "swap_image" in quiet.stderr  # one line per call the user made

"""``miocreate batch --redis --resubmit-uncertain`` is refused (exit 2) before anything is
sent: a distributed batch never sends an uncertain job again, and the option is not silently
ignored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("taskiq_redis", reason="needs the distributed extra")

from miocreate_async.emulator import Emulator, write_sample_face, write_sample_photo

pytestmark = [pytest.mark.e2e, pytest.mark.processes]

CLI = "import sys; from miocreate_async._cli import main; sys.exit(main())"


def test_resubmit_uncertain_with_redis_is_refused_before_anything_is_sent(
    tmp_path: Path, redis_url: str
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    write_sample_photo(photos / "a.jpg", seed=1, size=(96, 72))
    face = write_sample_face(tmp_path / "face.png", seed=1)
    with Emulator(data_dir=tmp_path / "emulator", seed=1).run_in_thread() as emulator:
        env = {
            **os.environ,
            "MIOCREATE_BASE_URL": emulator.url,
            "MIOCREATE_CLIENT_ID": emulator.client_id,
            "MIOCREATE_CLIENT_SECRET": emulator.client_secret,
        }
        run = subprocess.run(
            [sys.executable, "-c", CLI, "batch", str(photos), "--face", str(face),
             "-o", str(tmp_path / "out"), "--redis", redis_url, "--resubmit-uncertain"],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        ledger = emulator.ledger
    assert run.returncode == 2, run.stdout + run.stderr
    assert "--resubmit-uncertain does not work with --redis" in run.stderr
    assert ledger["requests"] == []  # nothing sent, nothing uploaded
    assert ledger["tasks"] == []
    import redis

    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        assert list(client.scan_iter(match="miocreate:*")) == []  # no batch recorded

"""The distributed edge stays an extra: the core never imports it, nor taskiq or redis."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.processes
def test_importing_the_package_imports_no_distributed_dependency() -> None:
    code = (
        "import sys, miocreate_async; "
        "from miocreate_async import MioCreate, SwapJob; "
        "loaded = [m for m in ('taskiq', 'taskiq_redis', 'redis') if m in sys.modules]; "
        "print(loaded)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_job_other_machines_cannot_read_is_refused_before_anything_is_sent() -> None:
    pytest.importorskip("taskiq_redis", reason="needs the distributed extra")
    from miocreate_async import InvalidInputError, Key, SwapJob
    from miocreate_async.distributed._codec import encode_job, input_of

    with pytest.raises(InvalidInputError, match="other machines cannot read it"):
        encode_job(SwapJob(b"\xff\xd8 bytes", Key("faces/me.jpg")))
    job_id, _, _, spec = encode_job(SwapJob("https://example.org/a/p.jpg?x=1", Key("f/me.jpg")))
    assert input_of(spec["image"]) == "https://example.org/a/p.jpg?x=1"
    assert isinstance(input_of(spec["face"]), Key)
    assert encode_job(SwapJob("https://example.org/a/p.jpg?x=1", Key("f/me.jpg")))[0] == job_id

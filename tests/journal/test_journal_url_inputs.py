"""URL inputs in a journal: named by the URL without its signing parameters, so that no signed
query is stored or printed, and the same batch resumed elsewhere (or with URLs signed again)
finds its jobs."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest

from miocreate_async import MioCreate, PollPolicy, SwapJob, UploadProgress
from miocreate_async._cli import main
from miocreate_async._journal import describe_input, job_identity
from miocreate_async._redact import unsigned_url
from miocreate_async.emulator import Emulator

pytestmark = pytest.mark.anyio

FAST = PollPolicy(first=0.02, minimum=0.02, ratio=0.15, maximum=0.1)
SIGNED = (
    "https://bucket.s3.example.com/in%2Fputs/photo%3D(1).jpg?versionId=7"
    "&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20261204%2Fus-east-1%2Fs3"
    "&X-Amz-Date=20261204T000000Z&X-Amz-Expires=600&X-Amz-SignedHeaders=host"
    "&X-Amz-Security-Token=tok3n&X-Amz-Signature={signature}"
)


def ident(image: str, face: str) -> tuple[str, str]:
    return job_identity(
        describe_input(image, None), describe_input(face, None), hd=False, kind=None,
        explicit_id=None,
    )  # fmt: skip


def test_a_url_is_named_without_its_signature_wherever_the_batch_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ident(SIGNED.format(signature="aaaa1111"), "https://cdn.example.com/face.png")
    monkeypatch.chdir(tmp_path)
    again = ident(SIGNED.format(signature="bbbb2222"), "https://cdn.example.com/face.png")
    assert again == first
    label = describe_input(SIGNED.format(signature="aaaa1111"), None).label
    assert label == "https://bucket.s3.example.com/in%2Fputs/photo%3D(1).jpg?versionId=7"
    for secret in ("aaaa1111", "tok3n", "AKIA", "X-Amz"):
        assert secret not in label


@pytest.mark.parametrize(
    ("url", "unsigned"),
    [
        ("https://h/p.jpg?Signature=s&Expires=1&AWSAccessKeyId=k", "https://h/p.jpg"),
        ("https://h/p.jpg?Policy=p&Signature=s&Key-Pair-Id=k&w=2", "https://h/p.jpg?w=2"),
        ("https://h/p.jpg?X-Goog-Signature=s&X-Goog-Credential=c&x-goog-date=d", "https://h/p.jpg"),
        ("https://h/c/p.jpg?sv=1&se=2&sr=b&sp=r&sig=s", "https://h/c/p.jpg"),
        (
            "https://u:pw@H:8443/p.jpg?q-sign-algorithm=sha1&q-ak=a&q-signature=s#x",
            "https://h:8443/p.jpg",
        ),
        ("https://h/p.jpg?se=keep&v=1", "https://h/p.jpg?se=keep&v=1"),
    ],
)
def test_signing_parameters_are_removed(url: str, unsigned: str) -> None:
    assert unsigned_url(url) == unsigned


async def test_no_signed_query_is_stored_or_printed(
    client: MioCreate,
    emulator: Emulator,
    sample_photo: Path,
    sample_face: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    photo = await client.get_access_url(await client.upload(sample_photo))
    face = await client.get_access_url(await client.upload(sample_face))
    signatures = [parse_qs(urlsplit(url).query)["X-Amz-Signature"][0] for url in (photo, face)]
    journal = tmp_path / "journal.sqlite"
    async with client.swap_many([SwapJob(photo, face)], journal=journal, poll=FAST) as results:
        (outcome,) = [outcome async for outcome in results]
    assert outcome.ok, outcome.error
    with contextlib.closing(sqlite3.connect(journal)) as db, db:
        stored = json.dumps([list(row) for row in db.execute("SELECT * FROM jobs")])
    status = ["--json", "journal", "status", str(journal)]
    assert await anyio.to_thread.run_sync(main, status) == 0  # the CLI runs its own loop
    printed = capsys.readouterr().out
    for signature in signatures:
        assert signature not in stored
        assert signature not in printed
    assert "X-Amz-Credential" not in stored

    # Signed again (a later expiry): the resumed batch finds its job and creates no task.
    emulator.advance_clock(5)
    photo_again = await client.get_access_url(urlsplit(photo).path.split("/_storage/", 1)[1])
    assert photo_again != photo
    creations = len(emulator.ledger["tasks"])
    async with client.swap_many([SwapJob(photo_again, face)], journal=journal, poll=FAST) as again:
        (resumed,) = [outcome async for outcome in again]
    assert resumed.ok
    assert resumed.resumed
    assert len(emulator.ledger["tasks"]) == creations


def test_a_jobs_repr_shows_no_signature() -> None:
    job = SwapJob(SIGNED.format(signature="aaaa1111"), "https://cdn.example.com/face.png")
    assert "aaaa1111" not in repr(job)
    assert "tok3n" not in repr(job)
    assert "photo%3D(1).jpg" in repr(job)
    progress = UploadProgress(job.media, "photo.jpg", 1, 2)
    assert "aaaa1111" not in repr(progress)

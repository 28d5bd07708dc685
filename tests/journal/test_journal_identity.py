"""Job identity: the same jobs given again find their records; changed inputs are noticed."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from miocreate_async import InvalidInputError
from miocreate_async._journal import describe_input, job_identity


def ident(image: object, face: object, **kw: object) -> tuple[str, str]:
    options: dict[str, object] = {"hd": False, "kind": None, "explicit_id": None, **kw}
    return job_identity(describe_input(image, None), describe_input(face, None), **options)  # type: ignore[arg-type]


def test_paths_by_absolute_path_with_size_and_mtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo, face = tmp_path / "p.jpg", tmp_path / "f.jpg"
    photo.write_bytes(b"one")
    face.write_bytes(b"face")
    monkeypatch.chdir(tmp_path)
    job_id, fingerprint = ident(photo, face)
    assert ident("p.jpg", "f.jpg") == (job_id, fingerprint)
    assert ident(photo, face, hd=True)[0] != job_id
    assert ident(photo, face, kind="image")[0] != job_id
    photo.write_bytes(b"two!")
    os.utime(photo, ns=(1, 1))
    changed_id, changed_fingerprint = ident(photo, face)
    assert changed_id == job_id
    assert changed_fingerprint != fingerprint


def test_bytes_by_content_keys_by_name_and_explicit_ids() -> None:
    assert ident(b"abc", b"face") == ident(b"abc", b"face")
    assert ident(b"abc", b"face")[0] != ident(b"abd", b"face")[0]
    key = describe_input("folder/x.jpg", "folder/x.jpg")
    assert key.identity == "key:folder/x.jpg"
    job_id, _ = ident(b"abc", b"face", explicit_id="row-7")
    assert job_id == "row-7"
    # An explicit id notices changed content: the fingerprint differs, the id does not.
    assert ident(b"abc", b"face", explicit_id="r")[1] != ident(b"xyz", b"face", explicit_id="r")[1]


def test_streams_need_an_explicit_id() -> None:
    with pytest.raises(InvalidInputError, match="needs an id"):
        ident(io.BytesIO(b"abc"), b"face")
    job_id, _ = ident(io.BytesIO(b"abc"), b"face", explicit_id="s1")
    assert job_id == "s1"

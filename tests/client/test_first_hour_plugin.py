"""Issue 14, item 9: the pytest fixtures work as the README says, in a user's own project:
under pytest-asyncio's default (strict) mode, under anyio's plugin, and with sample files."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import pytest
from pathlib import Path

from miocreate_async import MioCreate, NoFaceDetectedError


@pytest.mark.asyncio
async def test_with_pytest_asyncio(miocreate_client, miocreate_sample_photo, miocreate_sample_face):
    assert isinstance(miocreate_client, MioCreate)
    result = await miocreate_client.swap_image(miocreate_sample_photo, miocreate_sample_face)
    assert len(await result.read()) == result.size


@pytest.mark.anyio
async def test_with_anyio(miocreate_client, miocreate_sample_photo, miocreate_sample_face):
    result = await miocreate_client.swap_image(miocreate_sample_photo, miocreate_sample_face)
    assert result.width == 640


@pytest.mark.asyncio
async def test_an_error_with_pytest_asyncio(
    miocreate_emulator, miocreate_client, miocreate_sample_photo, miocreate_sample_face
):
    miocreate_emulator.scenario("image_swap", task_fail={"code": 602, "message": "no face"})
    with pytest.raises(NoFaceDetectedError):
        await miocreate_client.swap_image(miocreate_sample_photo, miocreate_sample_face)


def test_sample_files(miocreate_sample_photo, miocreate_sample_face, miocreate_sample_video):
    assert miocreate_sample_photo.suffix in (".png", ".jpg")
    assert miocreate_sample_photo.stat().st_size > 0
    assert miocreate_sample_face.suffix in (".png", ".jpg")
    assert miocreate_sample_face.stat().st_size > 0
    assert miocreate_sample_video.suffix == ".mp4"
    assert miocreate_sample_video.read_bytes()[4:8] == b"ftyp"
"""


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_the_fixtures_in_a_users_project(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    # A user's project: only pytest-asyncio's own setting, none of this repository's.
    pytester.makeini(
        f"[pytest]\nasyncio_mode = {mode}\nasyncio_default_fixture_loop_scope = function\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error::ResourceWarning")
    result.assert_outcomes(passed=4)


def test_the_fixtures_without_pytest_asyncio(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS.replace("@pytest.mark.asyncio", "@pytest.mark.anyio"))
    result = pytester.runpytest_subprocess("-p", "no:asyncio", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)

"""The pytest plugin's fixtures, as users' tests see them."""

from __future__ import annotations

import urllib.request

import pytest

from miocreate_async import MioCreate, TaskFailedError
from miocreate_async.emulator import Emulator, samples

pytestmark = pytest.mark.processes

pytest_plugins = ["pytester"]


def test_miocreate_emulator_fixture_in_a_sync_test(miocreate_emulator: Emulator) -> None:
    request = urllib.request.Request(
        miocreate_emulator.url + "/v1/source/upload-url", data=b"{}", method="POST"
    )
    with urllib.request.urlopen(request) as reply:
        assert b'"code": 401' in reply.read()
    miocreate_emulator.scenario("token", code=500)
    assert miocreate_emulator.ledger["scenarios"][0]["code"] == 500
    miocreate_emulator.reset()
    assert miocreate_emulator.ledger["requests"] == []


@pytest.mark.miocreate_emulator(credits=5, latency=0.2)
def test_marker_sets_options(miocreate_emulator: Emulator) -> None:
    assert miocreate_emulator.ledger["credits_left"] == 5


@pytest.mark.anyio
async def test_miocreate_emulator_fixture_in_an_async_test(miocreate_emulator: Emulator) -> None:
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.post(
            miocreate_emulator.url + "/v1/oauth/token",
            json={
                "client_id": miocreate_emulator.client_id,
                "client_secret": miocreate_emulator.client_secret,
            },
        ) as reply,
    ):
        assert (await reply.json())["code"] == 200


def test_fixtures_in_a_users_test_file(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def anyio_backend():
            return "asyncio"
        """
    )
    pytester.makepyfile(
        """
        import pytest

        def test_sync(miocreate_emulator):
            assert miocreate_emulator.url.startswith("http://127.0.0.1:")

        @pytest.mark.anyio
        async def test_client(miocreate_client, miocreate_emulator):
            assert miocreate_client is not None
            assert miocreate_emulator.ledger["tasks"] == []
        """
    )
    result = pytester.runpytest_subprocess("-p", "anyio", "-W", "error::ResourceWarning")
    result.assert_outcomes(passed=2)


@pytest.mark.skipif(not samples.vision_available(), reason="needs the vision extra")
@pytest.mark.miocreate_emulator(vision=True, latency=0.02)
@pytest.mark.anyio
async def test_marker_turns_vision_on(miocreate_client: MioCreate) -> None:
    with pytest.raises(TaskFailedError) as no_face:
        await miocreate_client.detect_faces(samples.scenery())
    assert no_face.value.code == 602
    assert len(await miocreate_client.detect_faces(samples.group_photo())) == 2


# --- the fixtures in a user's own project: under pytest-asyncio's default (strict) mode, under
# anyio's plugin, and with sample files, as the README says.

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

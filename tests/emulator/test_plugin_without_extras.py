"""The pytest plugin on the base install (no ``emulator`` extra, so no Pillow): the sample
fixtures still give real files, and the emulator fixtures fail saying which extra to install,
not ``No module named 'PIL'``. The missing packages are simulated by blocking their import in
the user's test session (a subprocess)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from miocreate_async import MioCreate
from miocreate_async.emulator._plain import face_png, scene_png

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.processes

#: The extras' packages, absent: ``import PIL`` raises ImportError.
BLOCK_EXTRAS = """
import sys

for name in ("PIL", "numpy", "cv2", "av", "skimage", "matplotlib"):
    sys.modules[name] = None
"""

USER_TESTS = """
import pytest


def test_sample_files(miocreate_sample_photo, miocreate_sample_face, miocreate_sample_video):
    assert miocreate_sample_photo.read_bytes().startswith(b"\\x89PNG")
    assert miocreate_sample_photo.name == "photo.png"
    assert miocreate_sample_face.read_bytes().startswith(b"\\x89PNG")
    assert miocreate_sample_video.read_bytes()[4:8] == b"ftyp"


@pytest.mark.anyio
async def test_a_swap(miocreate_client, miocreate_sample_photo, miocreate_sample_face):
    await miocreate_client.swap_image(miocreate_sample_photo, miocreate_sample_face)
"""


def test_fixtures_on_the_base_install(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(BLOCK_EXTRAS)
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    output = result.stdout.str()
    assert "pip install 'miocreate-async[emulator]'" in output
    assert "No module named 'PIL'" not in output


def test_plain_samples_are_pictures_the_emulator_swaps(tmp_path: Path) -> None:
    for data, size in ((scene_png(640, 480, seed=7), (640, 480)), (face_png(11), (200, 250))):
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            assert image.size == size


@pytest.mark.anyio
async def test_the_emulator_swaps_the_plain_samples(client: MioCreate, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(scene_png(640, 480, seed=7))
    face = tmp_path / "face.png"
    face.write_bytes(face_png(11))
    result = await client.swap_image(photo, face=face)
    assert (result.width, result.height) == (640, 480)

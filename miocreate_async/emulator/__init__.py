"""A local MioCreate-compatible server for tests, demos and development without credits.

``async with Emulator(latency=0.1, seed=1) as emu:`` serves the API on a free port:
token exchange, presigned storage with S3 semantics, a task engine with real results, the
documented codes, and seeded faults. See ``python -m miocreate_async.emulator --help``.
"""

from __future__ import annotations

from ._cartoon import write_sample_face, write_sample_photo, write_sample_video
from ._conformance import replay_recording
from ._server import Emulator
from ._settings import EmulatorSettings, Latency

__all__ = [
    "Emulator",
    "EmulatorSettings",
    "Latency",
    "replay_recording",
    "write_sample_face",
    "write_sample_photo",
    "write_sample_video",
]

Emulator.__module__ = __name__

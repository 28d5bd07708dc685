"""Before a batch: what it will cost and how long it will take, with nothing uploaded or created.

``MioCreate.estimate(jobs)`` and ``miocreate batch ... --dry-run`` read each job locally: its
kind (from ``SwapJob.kind``, a file's first bytes, a key's extension), a video's length (an
MP4's ``mvhd`` box), and, with a journal, where the job stands (finished jobs cost nothing
again; jobs whose task exists are only waited for). Credits come from ``Prices``, a setting of
yours: the service publishes no prices, so every price is unknown until you set it. The wall
time comes from the durations the client learnt of each kind of task (unknown before any).
"""

from __future__ import annotations

import math
import os
import struct
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import anyio
import attrs

from ._batch import SwapJob
from ._errors import InvalidInputError
from ._formats import is_video_name, sniff
from ._journal import JobRecord, JobState
from ._journal._tracker import identify
from ._mp4 import Read, boxes, in_file, in_memory, mvhd_seconds
from ._operations import TaskKind
from ._poller import Learnt
from ._transfer._inputs import Key

__all__ = ["Estimate", "Prices", "estimate_jobs", "video_seconds"]

#: The environment variable ``Prices.from_env`` reads ("image=1,video_per_second=0.2").
PRICES_ENV = "MIOCREATE_PRICES"


def _price(_: object, attribute: Any, value: object) -> None:
    ok = value is None or (
        isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < math.inf
    )
    if not ok:
        raise InvalidInputError(f"{attribute.name} must be a price >= 0 or None, got {value!r}")


@attrs.frozen(kw_only=True)
class Prices:
    """Credits per swap, as your plan charges them; None is unknown (the default: the service
    publishes no prices). Videos are priced per second of video."""

    image: float | None = attrs.field(default=None, validator=_price)
    image_hd: float | None = attrs.field(default=None, validator=_price)
    video_per_second: float | None = attrs.field(default=None, validator=_price)
    video_hd_per_second: float | None = attrs.field(default=None, validator=_price)

    @classmethod
    def parse(cls, text: str) -> Prices:
        """``"image=1,image_hd=2,video_per_second=0.5"`` (the CLI's ``--prices``)."""
        fields: dict[str, float] = {}
        names = {field.name for field in attrs.fields(cls)}
        for part in filter(None, (item.strip() for item in text.split(","))):
            name, _, value = part.partition("=")
            name = name.strip()
            if name not in names:
                raise InvalidInputError(
                    f"unknown price {name!r}: one of {', '.join(sorted(names))}"
                )
            try:
                fields[name] = float(value)
            except ValueError:
                raise InvalidInputError(f"price {name} must be a number, got {value!r}") from None
        return cls(**fields)

    @classmethod
    def from_env(cls) -> Prices:
        """From ``MIOCREATE_PRICES`` (as ``parse``), else every price unknown."""
        return cls.parse(os.environ.get(PRICES_ENV, ""))

    def of(self, kind: str, hd: bool, seconds: float | None) -> float | None:
        """One swap's credits, or None when unknown."""
        if kind == "image":
            return self.image_hd if hd else self.image
        per_second = self.video_hd_per_second if hd else self.video_per_second
        return None if per_second is None or seconds is None else per_second * seconds


@attrs.frozen(kw_only=True)
class Estimate:
    """What a batch will cost, before it runs (``MioCreate.estimate``)."""

    #: Jobs given.
    jobs: int
    #: Jobs by kind: "image", "image_hd", "video", "video_hd", "unknown".
    by_kind: Mapping[str, int]
    #: Seconds of video, over the videos whose length could be read locally.
    video_seconds: float
    #: Videos whose length is unknown (keys, URLs, streams, files not MP4).
    videos_without_length: int
    #: Finished in the journal: no request is sent for them.
    done: int
    #: Their task exists (an earlier run created it): waited for, not paid again.
    waiting: int
    #: Uncertain in the journal: not sent again unless you choose to.
    uncertain: int
    #: Creations the batch would send (capped by ``max_tasks``).
    to_create: int
    #: Credits of those creations; None when a price (or a video's length) is unknown.
    credits: float | None
    #: Seconds the tasks should take at the batch's concurrency, from the durations the client
    #: learnt; None before any task of a kind ended.
    wall_time: float | None
    prices: Prices

    def as_dict(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "by_kind": dict(self.by_kind),
            "video_seconds": round(self.video_seconds, 3),
            "videos_without_length": self.videos_without_length,
            "done": self.done,
            "waiting": self.waiting,
            "uncertain": self.uncertain,
            "to_create": self.to_create,
            "credits": self.credits,
            "wall_time": self.wall_time,
            "prices": attrs.asdict(self.prices),
        }

    def lines(self) -> list[str]:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(self.by_kind.items()) if n)
        seconds = f"{self.video_seconds:.1f}s of video"
        if self.videos_without_length:
            seconds += f" (+{self.videos_without_length} of unknown length)"
        credits = "unknown (set prices)" if self.credits is None else f"{self.credits:g}"
        wall = "unknown" if self.wall_time is None else f"about {_duration(self.wall_time)}"
        return [
            f"jobs: {self.jobs} ({kinds or 'none'}); {seconds}",
            f"in the journal: {self.done} done, {self.waiting} waited for, "
            f"{self.uncertain} uncertain",
            f"tasks to create: {self.to_create}; credits: {credits}; tasks' time: {wall}",
        ]

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, second = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{second:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


# --- reading jobs locally ---------------------------------------------------------------------


def _head(source: object) -> bytes | None:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(memoryview(source)[:64])
    if isinstance(source, (str, os.PathLike)) and not isinstance(source, Key):
        try:
            with open(source, "rb") as file:
                return file.read(64)
        except (OSError, ValueError):
            return None
    return None


def _kind(job: SwapJob) -> str | None:
    if job.kind is not None:
        return job.kind
    head = _head(job.media)
    if head is not None:
        media = sniff(head)
        return None if media is None else ("video" if media.is_video else "image")
    if isinstance(job.media, (str, os.PathLike)):
        video = is_video_name(os.fspath(job.media).split("?")[0])
        return None if video is None else ("video" if video else "image")
    return None


def _movie_seconds(read: Read, size: int) -> float | None:
    for kind, start, end in boxes(read, 0, size):
        if kind != b"moov":
            continue
        for inner, inner_start, inner_end in boxes(read, start, end):
            if inner == b"mvhd":
                return mvhd_seconds(read(inner_start, min(32, inner_end - inner_start)))
    return None


def video_seconds(source: object) -> float | None:
    """A local MP4's length (its ``mvhd`` box), from a path or bytes; None when unknown."""
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            return _movie_seconds(in_memory(data), len(data))
        if isinstance(source, (str, os.PathLike)) and not isinstance(source, Key):
            with open(source, "rb") as file:
                return _movie_seconds(in_file(file), os.fstat(file.fileno()).st_size)
    except (OSError, ValueError, struct.error):
        return None
    return None


@attrs.frozen
class _Read:
    kind: str | None
    hd: bool
    seconds: float | None
    state: JobState | None


def _read_jobs(jobs: Iterable[SwapJob], records: Mapping[str, JobRecord]) -> list[_Read]:
    found = []
    for job in jobs:
        if not isinstance(job, SwapJob):
            raise TypeError(f"estimate takes SwapJob items, got {type(job).__name__}")
        kind = _kind(job)
        seconds = video_seconds(job.media) if kind == "video" else None
        state = None
        if records:
            try:
                job_id, _ = identify(job)
            except (InvalidInputError, ValueError, TypeError, OSError):
                job_id = None
            record = records.get(job_id) if job_id is not None else None
            state = None if record is None else record.state
        found.append(_Read(kind, job.hd, seconds, state))
    return found


_DONE = frozenset({JobState.SUCCEEDED, JobState.DOWNLOADED, JobState.FAILED, JobState.EXPIRED})
_KINDS = {"image": TaskKind.IMAGE_SWAP, "video": TaskKind.VIDEO_SWAP}


async def estimate_jobs(
    jobs: Iterable[SwapJob],
    *,
    prices: Prices | None = None,
    journal: str | os.PathLike[str] | None = None,
    concurrency: int = 16,
    max_tasks: int | None = None,
    resubmit_uncertain: bool = False,
    learnt: Learnt | None = None,
) -> Estimate:
    """See ``MioCreate.estimate``."""
    prices = prices if prices is not None else Prices.from_env()
    records: dict[str, JobRecord] = {}
    if journal is not None and await anyio.Path(journal).is_file():
        from ._journal._sqlite import SQLiteJournal

        records = {record.id: record for record in await SQLiteJournal.read_records(journal)}
    jobs = list(jobs)
    read = await anyio.to_thread.run_sync(_read_jobs, jobs, records)
    by_kind: Counter[str] = Counter()
    done = waiting = uncertain = 0
    to_create: list[_Read] = []
    seconds = 0.0
    unknown_lengths = 0
    for job in read:
        by_kind[(job.kind or "unknown") + ("_hd" if job.hd and job.kind else "")] += 1
        if job.kind == "video":
            if job.seconds is None:
                unknown_lengths += 1
            else:
                seconds += job.seconds
        if job.state in _DONE:
            done += 1
        elif job.state is JobState.SUBMITTED:
            waiting += 1
        elif job.state in (JobState.UNCERTAIN, JobState.SUBMITTING) and not resubmit_uncertain:
            uncertain += 1
        else:
            to_create.append(job)
    if max_tasks is not None:
        to_create = to_create[:max_tasks]
    credits: float | None = 0.0
    for job in to_create:
        price = None if job.kind is None else prices.of(job.kind, job.hd, job.seconds)
        credits = None if price is None or credits is None else credits + price
    return Estimate(
        jobs=len(read),
        by_kind=dict(by_kind),
        video_seconds=seconds,
        videos_without_length=unknown_lengths,
        done=done,
        waiting=waiting,
        uncertain=uncertain,
        to_create=len(to_create),
        credits=credits,
        wall_time=_wall_time(to_create, learnt or {}, max(1, concurrency)),
        prices=prices,
    )


def _wall_time(jobs: list[_Read], learnt: Learnt, concurrency: int) -> float | None:
    counts = Counter(job.kind for job in jobs)
    total = 0.0
    for kind, n in counts.items():
        durations = learnt.get(_KINDS[kind]) if kind is not None else None
        typical = durations.typical() if durations is not None else None
        if typical is None:
            return None
        total += math.ceil(n / concurrency) * typical
    return total

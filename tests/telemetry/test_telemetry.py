"""OpenTelemetry: the spans and metrics of real swaps against the emulator, read with the SDK's
in-memory exporter and reader; and nothing at all (not even an import) without the API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from miocreate_async import InsufficientCreditsError, MioCreate, SwapJob
from miocreate_async.emulator import Emulator

pytestmark = pytest.mark.anyio

EXPORTER = InMemorySpanExporter()
READER = InMemoryMetricReader()


@pytest.fixture(scope="module", autouse=True)
def _sdk() -> None:
    """The SDK's providers, set when these tests run (not at collection): OpenTelemetry takes
    one per process, so they stay for the tests after these."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        tracing = TracerProvider()
        tracing.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(tracing)
        metrics.set_meter_provider(MeterProvider(metric_readers=[READER]))


@pytest.fixture
def spans() -> InMemorySpanExporter:
    EXPORTER.clear()
    READER.collect()  # counters are cumulative: tests compare with a baseline
    return EXPORTER


def points() -> dict[tuple[str, tuple[tuple[str, Any], ...]], float]:
    """Every metric's value (a histogram's count) by name and attributes."""
    found: dict[tuple[str, tuple[tuple[str, Any], ...]], float] = {}
    data = READER.get_metrics_data()
    if data is None:
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    # A counter's value; a histogram's number of recordings.
                    value = point.value if isinstance(point, NumberDataPoint) else point.count
                    labels = tuple(sorted((point.attributes or {}).items()))
                    found[metric.name, labels] = value
    return found


def grew(before: dict[Any, float], after: dict[Any, float], name: str, **attributes: Any) -> float:
    key = (name, tuple(sorted(attributes.items())))
    return after.get(key, 0) - before.get(key, 0)


def attribute(span: ReadableSpan, name: str) -> Any:
    assert span.attributes is not None
    return span.attributes[f"miocreate.{name}"]


def named(finished: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in finished if span.name == name]


async def test_a_swap_is_a_job_span_with_its_steps_and_metrics(
    client: MioCreate,
    emulator: Emulator,
    sample_photo: Path,
    sample_face: Path,
    tmp_path: Path,
    spans: InMemorySpanExporter,
) -> None:
    before = points()
    result = await client.swap_image(sample_photo, sample_face)
    saved = await result.download(tmp_path / "out.jpg")
    finished = spans.get_finished_spans()
    (job,) = named(finished, "miocreate.job")
    uploads = named(finished, "miocreate.upload")
    (create,) = named(finished, "miocreate.create")
    (wait,) = named(finished, "miocreate.wait")
    (download,) = named(finished, "miocreate.download")
    assert job.context is not None
    for child in (*uploads, create, wait):
        assert child.parent is not None
        assert child.parent.span_id == job.context.span_id
    assert len(uploads) == 2
    sizes = sorted(int(attribute(span, "bytes")) for span in uploads)
    assert sizes == sorted([sample_photo.stat().st_size, sample_face.stat().st_size])
    task_id = emulator.ledger["tasks"][-1]["id"]
    assert create.attributes is not None
    assert create.attributes["miocreate.task_id"] == task_id
    assert create.attributes["miocreate.outcome"] == "ok"
    assert wait.attributes is not None
    assert wait.attributes["miocreate.task_id"] == task_id
    assert job.attributes is not None
    assert job.attributes["miocreate.outcome"] == "ok"
    assert download.attributes is not None
    assert download.attributes["miocreate.outcome"] == "ok"
    after = points()
    assert grew(before, after, "miocreate.creations", outcome="ok") == 1
    assert grew(before, after, "miocreate.job.duration", outcome="ok", kind="image") == 1
    up = sample_photo.stat().st_size + sample_face.stat().st_size
    assert grew(before, after, "miocreate.transfer.bytes", direction="up") == up
    assert grew(before, after, "miocreate.transfer.bytes", direction="down") == saved.stat().st_size
    assert grew(before, after, "miocreate.poll.requests") >= 1


async def test_each_step_says_the_try_it_ended_on(
    client: MioCreate,
    emulator: Emulator,
    sample_photo: Path,
    sample_face: Path,
    tmp_path: Path,
    spans: InMemorySpanExporter,
) -> None:
    emulator.scenario("storage_put", fault="http", http_status=503)  # one upload tried twice
    emulator.scenario("image_swap", code=802)  # the quota: refused, nothing created, retried
    emulator.scenario("storage_get", fault="http", http_status=503)
    result = await client.swap_image(sample_photo, sample_face)
    await result.download(tmp_path / "out.jpg")
    finished = spans.get_finished_spans()
    uploads = sorted(attribute(span, "attempt") for span in named(finished, "miocreate.upload"))
    assert uploads == [1, 2]
    (create,) = named(finished, "miocreate.create")
    assert attribute(create, "attempt") == 2
    (download,) = named(finished, "miocreate.download")
    assert attribute(download, "attempt") == 2


async def test_a_refusal_for_credits_is_its_outcome(
    client: MioCreate,
    emulator: Emulator,
    sample_photo: Path,
    sample_face: Path,
    spans: InMemorySpanExporter,
) -> None:
    before = points()
    emulator.scenario("image_swap", code=801)
    with pytest.raises(InsufficientCreditsError):
        await client.swap_image(sample_photo, sample_face)
    (create,) = named(spans.get_finished_spans(), "miocreate.create")
    assert create.attributes is not None
    assert create.attributes["miocreate.outcome"] == "refused-801"
    after = points()
    assert grew(before, after, "miocreate.creations", outcome="refused-801") == 1


async def test_a_batch_has_a_job_span_per_job_and_counts_802_refusals(
    client: MioCreate,
    emulator: Emulator,
    sample_photo: Path,
    sample_face: Path,
    spans: InMemorySpanExporter,
) -> None:
    before = points()
    emulator.scenario("image_swap", code=802)  # refused once for the quota, then created
    jobs = [SwapJob(sample_photo, sample_face, kind="image") for _ in range(3)]
    async with client.swap_many(jobs, concurrency=3) as results:
        outcomes = [outcome async for outcome in results]
    assert all(outcome.ok for outcome in outcomes)
    finished = spans.get_finished_spans()
    jobs_seen = named(finished, "miocreate.job")
    assert len(jobs_seen) == 3
    assert {attribute(span, "task_id") for span in jobs_seen} == {
        outcome.task_id for outcome in outcomes
    }
    creates = named(finished, "miocreate.create")
    assert [attribute(span, "outcome") for span in creates].count("ok") == 3
    ids = {span.context.span_id for span in jobs_seen if span.context is not None}
    for wait in named(finished, "miocreate.wait"):
        assert wait.parent is not None
        assert wait.parent.span_id in ids
    after = points()
    assert grew(before, after, "miocreate.refusals.802") == 1
    assert grew(before, after, "miocreate.job.duration", outcome="ok", kind="image") == 3


@pytest.mark.processes
def test_without_the_api_nothing_is_imported_and_swaps_work(tmp_path: Path) -> None:
    code = f"""
import sys
sys.modules["opentelemetry"] = None  # not installed
import anyio
import miocreate_async
from miocreate_async.emulator import Emulator, samples

async def main():
    async with Emulator(latency=0.02) as emulator, emulator.client() as client:
        photo = {str(tmp_path / "p.jpg")!r}
        face = {str(tmp_path / "f.png")!r}
        open(photo, "wb").write(samples.photo(real=False))
        open(face, "wb").write(samples.face(real=False))
        result = await client.swap_image(photo, face)
        assert result.width > 0

anyio.run(main)
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    # Installed, the API is still not imported by ``import miocreate_async``.
    check = "import sys, miocreate_async; assert 'opentelemetry' not in sys.modules"
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


async def test_a_distributed_job_continues_the_submitters_trace(
    redis_url: str, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    pytest.importorskip("taskiq_redis", reason="needs the distributed extra")
    import anyio

    from miocreate_async import PollPolicy
    from miocreate_async.distributed import DistributedBatch, Worker
    from miocreate_async.emulator import write_sample_face, write_sample_photo

    face = write_sample_face(tmp_path / "face.png", seed=1)
    jobs = [SwapJob(write_sample_photo(tmp_path / f"p{i}.jpg", seed=i), face) for i in range(2)]
    tracer = trace.get_tracer("a user's app")
    drain = anyio.Event()
    async with Emulator(latency=0.05, seed=1, data_dir=tmp_path / "emu") as emu:
        worker = Worker(
            redis_url,
            concurrency=4,
            client_id=emu.client_id,
            client_secret=emu.client_secret,
            base_url=emu.url,
            poll=PollPolicy(first=0.05, minimum=0.05, maximum=0.2, settle=0.1),
        )
        async with anyio.create_task_group() as group:
            group.start_soon(worker.run, drain)
            async with DistributedBatch(
                redis_url, batch="traced", base_url=emu.url, client_id=emu.client_id, timeout=60
            ) as batch:
                with tracer.start_as_current_span("submit") as submit:
                    await batch.submit(jobs)
                with anyio.fail_after(60):
                    outcomes = [outcome async for outcome in batch.outcomes()]
            drain.set()
    assert all(outcome.ok for outcome in outcomes)
    finished = spans.get_finished_spans()
    jobs_seen = named(finished, "miocreate.job")
    assert len(jobs_seen) == 2
    trace_id = submit.get_span_context().trace_id
    for job in jobs_seen:
        # Another process would see the same: the context came through the job's spec.
        assert job.context is not None
        assert job.context.trace_id == trace_id
        assert job.parent is not None
        assert job.parent.span_id == submit.get_span_context().span_id
        assert job.parent.is_remote
    job_ids = {job.context.span_id for job in jobs_seen if job.context is not None}
    creates = named(finished, "miocreate.create")
    assert len(creates) == 2
    assert all(c.parent is not None and c.parent.span_id in job_ids for c in creates)

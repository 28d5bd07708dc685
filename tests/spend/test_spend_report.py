"""The spend report from journal records (pure): tasks by kind and day, failures by code,
uncertain, saved, and the results to save before they expire."""

from __future__ import annotations

from typing import Any

from miocreate_async._journal import ErrorInfo, JobRecord, JobState
from miocreate_async._journal._spend import RESULT_LIFETIME, spend_report

NOW = 1_780_000_000.0  # 2026-05-28
DAY = 24 * 3600.0


def record(state: JobState, **fields: Any) -> JobRecord:
    fields.setdefault("updated_at", NOW)
    return JobRecord(id=str(len(fields)), index=0, state=state, fingerprint="", **fields)


def test_the_report_counts_what_was_paid_and_what_is_left_to_save() -> None:
    records = [
        record(JobState.DOWNLOADED, kind="image", task_id=1, expires_at=NOW + 6 * DAY),
        record(JobState.SUCCEEDED, kind="video", task_id=2, expires_at=NOW + DAY / 2),
        record(JobState.SUCCEEDED, kind="image", task_id=3, expires_at=NOW + 3 * DAY),
        record(JobState.SUBMITTED, kind="image", task_id=4, updated_at=NOW - 2 * DAY),
        record(JobState.FAILED, kind="image", task_id=5, error=ErrorInfo("X", "no face", 602)),
        record(JobState.FAILED, error=ErrorInfo("InvalidInputError", "bad")),  # before creation
        record(JobState.UNCERTAIN, kind="video"),
        record(JobState.PENDING),
    ]
    report = spend_report(records, now=NOW)
    assert report.tasks_created == 5  # the failure before creation and the uncertain one: not
    assert report.by_kind() == {"image": 4, "video": 1}
    assert sum(sum(kinds.values()) for kinds in report.created.values()) == 5
    assert report.created["2026-05-26"] == {"image": 1}  # the one submitted two days ago
    assert report.succeeded == 3
    assert report.saved == 1
    assert report.failed == {"602": 1, "InvalidInputError": 1}
    assert report.uncertain == 1
    assert report.expiring == (2,)  # within 24 hours, not saved
    assert report.save_commands("out/") == ["miocreate task 2 --wait -o out/"]
    text = str(report)
    assert "tasks created: 5 (image 4, video 1)" in text
    assert "miocreate task 2 --wait -o out/" in text
    assert report.as_dict()["expiring_within_24h"] == [2]


def test_a_result_is_counted_on_the_day_it_was_made() -> None:
    made = NOW - 3 * DAY
    report = spend_report(
        [record(JobState.SUCCEEDED, kind="image", task_id=1, expires_at=made + RESULT_LIFETIME)],
        now=NOW,
    )
    assert list(report.created) == ["2026-05-25"]


def test_a_task_is_counted_on_the_day_it_was_created_even_if_it_ended_later() -> None:
    # Created two days ago, its result downloaded today: the creation's day counts.
    created = NOW - 2 * DAY
    report = spend_report(
        [
            record(
                JobState.DOWNLOADED,
                kind="image",
                task_id=1,
                created_at=created,
                expires_at=NOW + 6 * DAY,
            )
        ],
        now=NOW,
    )
    assert list(report.created) == ["2026-05-26"]

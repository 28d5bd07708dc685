"""The errors reference lists every documented code with its class, in a table and in the
site's index (Sphinx's search ignores numbers in the text, but finds index entries: searching
``602`` lands on the table), and says that a failed task is also its code's class."""

from __future__ import annotations

import re
from pathlib import Path

from miocreate_async import TaskFailedError
from miocreate_async._errors import _BY_CODE, task_failed_error

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "errors.md"


def test_every_code_has_a_row_and_an_index_entry() -> None:
    text = PAGE.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (\d{3}) \| \{class\}`~miocreate_async\.(\w+)` \|", text, re.M))
    entries = dict(re.findall(r"^\.\. index:: single: (\d{3}); (\w+)$", text, re.M))
    documented = {str(code): cls.__name__ for code, cls in _BY_CODE.items()}
    assert rows == documented
    assert entries == documented


def test_the_page_says_what_a_failed_task_is() -> None:
    text = " ".join(PAGE.read_text(encoding="utf-8").split())
    assert "both a `NoFaceDetectedError` and a `TaskFailedError`" in text
    # ...as the library raises it.
    error = task_failed_error(602, "no face")
    assert isinstance(error, TaskFailedError)
    assert type(error).__mro__[1] is _BY_CODE[602]

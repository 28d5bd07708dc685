"""``{cli-help} batch``: the ``--help`` text of a ``miocreate`` command, as the installed console
script prints it, so the CLI page can never drift from the parser."""

from __future__ import annotations

import contextlib
import io
import os
from importlib.metadata import entry_points
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective


def help_text(arguments: list[str]) -> str:
    (script,) = entry_points(group="console_scripts", name="miocreate")
    main = script.load()
    output = io.StringIO()
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"  # argparse wraps to it; the page's code blocks fit 80 columns
    try:
        with contextlib.redirect_stdout(output), contextlib.suppress(SystemExit):
            main([*arguments, "--help"])
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    return output.getvalue().rstrip()


class CliHelpDirective(SphinxDirective):
    optional_arguments = 2

    def run(self) -> list[nodes.Node]:
        text = help_text(list(self.arguments))
        if not text.startswith("usage:"):
            raise self.error(f"miocreate {' '.join(self.arguments)} --help printed no usage")
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("cli-help", CliHelpDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""Sphinx configuration of the miocreate-async documentation site.

Built in CI with ``sphinx-build -W --keep-going -n -b html docs docs/_build/html``: every warning,
a broken cross-reference (``nitpicky``) or a public name missing from the API reference
(``_ext/public_names.py``) fails the build.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

from public_names import PRIVATE_ALIASES  # noqa: E402

import miocreate_async  # noqa: E402

project = "miocreate-async"
author = "miocreate-async developers"
copyright = "2026, miocreate-async developers"
release = miocreate_async.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx_copybutton",
    "public_names",
    "cli_help",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Broken references are errors; only names of other projects (no inventory offline) are exempt.
nitpicky = True
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(aiohttp|anyio|attrs|cattrs|pytest|_pytest|PIL|yarl|multidict|taskiq|redis)(\..*)?",
    ),
    (
        r"py:.*",
        r"(collections|typing|typing_extensions|types|os|pathlib|datetime|enum|io|"
        r"contextlib|asyncio|logging|sqlite3|concurrent|_io|builtins|abc)\..*",
    ),
    (
        r"py:.*",
        r"(Any|Self|NoneType|Ellipsis|EllipsisType|PathLike|Path|datetime|timedelta|"
        r"Callable|Awaitable|AsyncIterator|AsyncIterable|Iterator|Iterable|Mapping|Sequence|"
        r"TracebackType|BinaryIO|IO|Enum|IntEnum|StrEnum|Literal|Protocol|TypeAlias|Generic)",
    ),
    # Private aliases in public signatures: each is spelled out where the signature is described.
    *((r"py:.*", rf"({name})") for name in PRIVATE_ALIASES),
]

autodoc_member_order = "groupwise"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
# Inheritance is shown where it matters, on the errors page (:show-inheritance: there).
autodoc_default_options = {"members": True}
autodoc_class_signature = "mixed"

html_theme = "furo"
html_title = f"miocreate-async {release}"
html_static_path = ["_static"]
# Long lines wrap instead of scrolling out of sight (the install line ends with `demo`).
html_css_files = ["wrap-code.css"]
# A copy button on every code block; it copies the command, never a prompt or an output line.
copybutton_prompt_text = r">>> |\.\.\. |\$ |In \[\d*\]: | {2,5}\.\.\.: "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True
copybutton_exclude = ".linenos, .gp, .go"
pygments_style = "friendly"
pygments_dark_style = "monokai"


# Type aliases (MediaInput, UploadSource, ProgressCallback, ...) are documented as data. On Python
# 3.10 autodoc renders a union alias in a signature as a class reference; resolve those as data.
def _alias_as_data(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py" or node.get("reftype") != "class":
        return None
    python = env.get_domain("py")
    return python.resolve_xref(
        env, node["refdoc"], app.builder, "data", node["reftarget"], node, contnode
    )


def setup(app: Any) -> None:
    app.connect("missing-reference", _alias_as_data)

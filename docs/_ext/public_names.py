"""Fail the build when a public name is missing from the API reference or has no docstring.

The public names are ``__all__`` of ``miocreate_async``, ``miocreate_async.emulator``,
``miocreate_async.pytest_plugin`` (its fixtures) and, when its extra is installed,
``miocreate_async.distributed``. Each must be described by a Python-domain directive
(``autoclass``, ``autofunction``, ``autodata``, ``py:function``...) under its public path.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from typing import Any, TypeVar

from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.typing import stringify_annotation

logger = logging.getLogger(__name__)

PUBLIC_MODULES = (
    "miocreate_async",
    "miocreate_async.emulator",
    "miocreate_async.emulator.samples",
    "miocreate_async.pytest_plugin",
    "miocreate_async.distributed",
)
#: Modules that need an optional package (taskiq and redis; pytest): skipped when it is absent.
OPTIONAL = {"miocreate_async.distributed", "miocreate_async.pytest_plugin"}
#: Private type aliases that appear in public signatures; the text around each signature says
#: what they accept, so they are shown as plain names rather than links.
PRIVATE_ALIASES = (
    "Jobs",  # swap_many's jobs: an iterable or async iterable of SwapJob
    "JobKind",  # SwapJob.kind: "image", "video" or None
    "SwapResult",  # ImageSwapResult | VideoSwapResult
    "LatencyInput",  # Emulator(latency=...): seconds, a range, or a mapping by kind
    "ResultDownloader",  # the client's download method, bound into a result
    "Journal",  # swap_many(journal=...): the journal protocol, while it is not exported
    "JobState",  # DistributedOutcome.state: a job's state name in the journal (an enum)
    "UrlSources",  # Config.url_sources: networks and hosts, or "any" (as Config's table says)
    "IPNetwork",  # an ipaddress network, among Config(url_sources=...)'s forms
    "Lane",  # a priority lane: "interactive" or "bulk" (the guide "Spend and fairness")
)


def public_names() -> set[str]:
    names: set[str] = set()
    for module_name in PUBLIC_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if module_name in OPTIONAL and error.name in {module_name, None} | _extras(error):
                continue
            raise
        names.update(f"{module_name}.{name}" for name in module.__all__)
    return names


def _extras(error: ModuleNotFoundError) -> set[str | None]:
    # A missing third-party module of the extra (taskiq, redis...) means the extra is absent.
    return {error.name} if error.name and not error.name.startswith("miocreate_async") else set()


def check_documented(app: Sphinx, env: Any) -> None:
    documented = set(env.domains["py"].objects)
    for name in sorted(public_names() - documented):
        logger.warning("public name %s is not in the API reference", name, type="public_names")


def check_docstring(
    app: Sphinx, what: str, name: str, obj: object, options: Any, lines: list[str]
) -> None:
    if what not in {"class", "exception", "function"} or not name.startswith("miocreate_async"):
        return
    if name.count(".") > 2 or not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return
    # A class's own docstring, not one inherited from Enum, str or its base error.
    own = vars(obj).get("__doc__") if inspect.isclass(obj) else obj.__doc__
    if not (own or "").strip():
        logger.warning("public name %s has no docstring of its own", name, type="public_names")


def public_target(app: Sphinx, env: Any, node: Any, contnode: Any) -> Any:
    """A private path (``miocreate_async._models.TaskHandle``) -> the public name."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py":
        return None
    last = target.rpartition(".")[2]
    if last.startswith("_") or _is_type_variable(target):
        return contnode  # private by design (never documented) or a generic's type variable
    if "." not in target:  # a bare name from a TYPE_CHECKING import: link its public name
        for module in PUBLIC_MODULES:
            if f"{module}.{target}" in env.domains["py"].objects:
                return env.domains["py"].resolve_xref(
                    env,
                    node["refdoc"],
                    app.builder,
                    node["reftype"],
                    f"{module}.{target}",
                    node,
                    contnode,
                )
        return None
    if "._" not in target:
        return None
    package, _, rest = target.partition("._")
    public = f"{package}.{rest.rpartition('.')[2]}"
    if public not in env.domains["py"].objects:
        # Lives in a private module, is not re-exported and is not described under its own
        # path (as the reference describes the types its signatures name): a dangling
        # reference, which nitpicky mode reports.
        return None
    node["reftarget"] = public
    return env.domains["py"].resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], public, node, contnode
    )


def _is_type_variable(target: str) -> bool:
    module_name, _, name = target.rpartition(".")
    if not module_name:  # a bare name, as in ``TaskInfo[R]``
        return any(
            isinstance(getattr(module, name, None), TypeVar)
            for module_name, module in list(sys.modules.items())
            if module_name.startswith("miocreate_async.")
        )
    if not module_name.startswith("miocreate_async"):
        return False
    try:
        value = getattr(importlib.import_module(module_name), name, None)
    except ImportError:
        return False
    return isinstance(value, TypeVar)


def drop_private_bases(app: Sphinx, name: str, obj: object, options: Any, bases: list[Any]) -> None:
    # Private bases say nothing to a reader.
    bases[:] = [base for base in bases if not getattr(base, "__name__", "").startswith("_")]


def name_aliases(
    app: Sphinx,
    what: str,
    name: str,
    obj: object,
    options: Any,
    signature: str | None,
    annotation: str | None,
) -> tuple[str | None, str | None]:
    """Show ``MediaInput`` in signatures rather than the seven-member union it stands for
    (``autodoc_type_aliases`` cannot: Sphinx fails on an alias inside a generic)."""
    import miocreate_async

    spelt = stringify_annotation(miocreate_async.MediaInput, mode="smart")
    if signature:
        signature = signature.replace(spelt, "~miocreate_async.MediaInput")
    return signature, annotation


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("autodoc-process-signature", name_aliases)
    app.connect("env-check-consistency", check_documented)
    app.connect("autodoc-process-docstring", check_docstring)
    app.connect("autodoc-process-bases", drop_private_bases)
    app.connect("missing-reference", public_target)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

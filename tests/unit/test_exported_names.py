"""The package's public names are exactly ``__all__``, sorted: none disappears by accident."""

from __future__ import annotations

import types

import miocreate_async


def test_all_is_sorted_and_unique() -> None:
    names = miocreate_async.__all__
    assert list(names) == sorted(names)
    assert len(set(names)) == len(names)


def test_every_name_in_all_is_importable_and_presented_as_public() -> None:
    for name in miocreate_async.__all__:
        value = getattr(miocreate_async, name)
        module = getattr(value, "__module__", None)
        # (On Python 3.10 a generic alias such as Callable[...] passes isinstance(x, type).)
        if (
            isinstance(module, str)
            and isinstance(value, type)
            and not isinstance(value, types.GenericAlias)
        ):
            # Users see miocreate_async.MioCreate, not the private module it lives in.
            assert module == "miocreate_async", (name, module)


def test_public_names_are_exactly_all() -> None:
    public = {
        name
        for name in dir(miocreate_async)
        # "@py_builtins" and the like come from pytest's assertion rewriting of its plugins.
        if not name.startswith(("_", "@")) or name == "__version__"
    }
    # Submodules (the emulator, the pytest plugin, the distributed edge) are reached by their
    # own import.
    public -= {"emulator", "pytest_plugin", "distributed"}
    assert public == set(miocreate_async.__all__)

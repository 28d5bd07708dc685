"""Import time: ``import miocreate_async`` versus ``import aiohttp`` alone.

Each import runs in a fresh interpreter (``python -c``), the two in turn, many times; the
child times its own import with ``time.perf_counter``, so the interpreter's start-up is left
out (it is shown apart). The modules that the library imports on top of aiohttp are listed
with their share, from one ``python -X importtime`` run.

    python -m benchmarks.import_time [--smoke | --full] [--rounds N]
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

from benchmarks._common import REPO, Table, base_parser, header, in_turn, median, ratio

SIDES = ("aiohttp", "miocreate_async")
_PROBE = (
    "import time; start = time.perf_counter(); import {module}; print(time.perf_counter() - start)"
)


def _timed_import(module: str, *, write_bytecode: bool = False) -> float:
    """Seconds ``import module`` takes in a fresh interpreter (``write_bytecode``: let it
    write the ``.pyc`` files, even where ``PYTHONDONTWRITEBYTECODE`` is set)."""
    env = dict(os.environ)
    if write_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"import {module} failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.strip())


def _startup() -> float:
    """Seconds an interpreter takes to start and stop, doing nothing."""
    import time

    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], cwd=REPO, check=True)
    return time.perf_counter() - start


def extra_modules(limit: int = 8) -> list[tuple[str, float]]:
    """Top-level packages ``import miocreate_async`` loads that ``import aiohttp`` does not,
    with the import time of their own modules (``-X importtime``'s self times, summed per
    package, so nothing is counted twice) in ms, largest first."""

    def tree(module: str) -> dict[str, float]:
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        packages: dict[str, float] = {}
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "cumulative" in line:
                continue
            own, _, name = (part.strip() for part in line[12:].split("|"))
            top = name.split(".")[0]
            packages[top] = packages.get(top, 0.0) + int(own) / 1000
        return packages

    ours, theirs = tree("miocreate_async"), tree("aiohttp")
    extra = [(name, ms) for name, ms in ours.items() if name not in theirs]
    return sorted(extra, key=lambda item: -item[1])[:limit]


def main(argv: Sequence[str] | None = None) -> int:
    cli = base_parser(__doc__ or "", rounds=30)
    args = cli.parse_args(argv)
    if args.worker:  # no workers here: every run is a plain interpreter
        return 2
    rounds = args.rounds or (3 if args.smoke else (100 if args.full else 30))
    header(
        "Import time",
        args,
        f"{rounds} fresh interpreters per import, in turn; the child times its own import; "
        "medians.",
    )
    # Compile any stale bytecode before the clock runs, as installing a package does: with
    # PYTHONDONTWRITEBYTECODE set, an editable checkout would otherwise be compiled from source
    # in every run, while aiohttp's installed bytecode is read (1.27x instead of 1.14x here).
    for module in SIDES:
        _timed_import(module, write_bytecode=True)
    results = in_turn(rounds, SIDES, lambda module, _: {"seconds": _timed_import(module)})
    startup = median([_startup() for _ in range(max(3, rounds // 5))])
    seconds = {side: [run["seconds"] * 1000 for run in results[side]] for side in SIDES}
    table = Table("import", "median ms", "min ms", "vs aiohttp")
    for side in SIDES:
        table.add(
            side,
            median(seconds[side]),
            min(seconds[side]),
            f"{ratio(seconds[side], seconds['aiohttp']):.3f}x",
        )
    table.add("(interpreter start-up, not included)", startup * 1000, "", "")
    print(table.render(), end="\n\n")
    extra = Table("imported on top of aiohttp", "own modules' ms (one -X importtime run)")
    for name, ms in extra_modules():
        extra.add(name, ms)
    print(extra.render(), end="\n\n")
    versus = ratio(seconds["miocreate_async"], seconds["aiohttp"])
    print(
        f"import miocreate_async {versus:.3f}x import aiohttp (target <= 1.2x: "
        f"{'met' if versus <= 1.2 else 'MISSED'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

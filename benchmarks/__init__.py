"""Benchmarks of miocreate_async against what users write by hand, on the emulator.

Each module runs as ``python -m benchmarks.<name>`` (``--smoke`` for seconds, ``--full`` for
the sizes of issue 7); see ``benchmarks/README.md`` for the latest figures.
"""

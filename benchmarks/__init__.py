"""seglog's benchmarks.

Two kinds live here:

* ``seglog bench`` (:mod:`benchmarks.runner`): seglog side by side with the stores a
  Python user would otherwise pick, at matched durability, each store in its own
  process, several rounds, reported as medians, spreads and ratios to seglog.
  The adapters in :mod:`benchmarks.adapters` say how each peer is configured for
  each of seglog's sync modes; ``docs/BENCHMARKS.md`` explains why.
* ``benchmarks/micro/``: pytest-benchmark micro-benchmarks of the engine's inner
  loops (codec, put, get, scan, recovery per record), for comparing two commits.
"""

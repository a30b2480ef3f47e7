"""Compaction: rewrite sealed segments without their dead records, while writes go on.

``compactor`` runs a compaction step by step (its docstring tells the steps
and why a crash between any two of them is safe), ``policy`` decides when and
what to compact, ``output`` sorts the input records and writes the copies.
"""

from engine.compaction.compactor import CancelledError, Compactor
from engine.compaction.output import CompactionReport
from engine.compaction.policy import CompactionOptions

__all__ = ["CancelledError", "CompactionOptions", "CompactionReport", "Compactor"]

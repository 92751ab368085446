"""Arrays in, frozen comparisons out: the comparator and the one deciding rule."""

from convdiff.compare.core import (DEFAULT_TOLERANCES, Comparison, Tolerance, Verdict, WorstPosition, compare_arrays,
                                   default_tolerance)

__all__ = ["DEFAULT_TOLERANCES", "Comparison", "Tolerance", "Verdict", "WorstPosition", "compare_arrays",
           "default_tolerance"]

"""Arrays in, frozen comparisons out: the comparator and the one deciding rule."""

from convdiff.compare.core import DEFAULT_CHUNK_SIZE, PASSING, Comparison, Verdict, WorstPosition, compare_arrays
from convdiff.compare.rules import Rule, RuleKind, parse_rule_kind
from convdiff.compare.tolerance import DEFAULT_TOLERANCES, Tolerance, default_tolerance

__all__ = ["DEFAULT_CHUNK_SIZE", "DEFAULT_TOLERANCES", "PASSING", "Comparison", "Rule", "RuleKind", "Tolerance",
           "Verdict", "WorstPosition", "compare_arrays", "default_tolerance", "parse_rule_kind"]

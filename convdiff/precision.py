"""The precision helpers the README documents as `convdiff.precision.*`, kept at that path.

They live in `convdiff.reference.rounding` (the rounding model) and `convdiff.analysis.bound` (the
analyses of a comparison).
"""

from convdiff.analysis.bound import SideError, ThreeWay, Tf32Consistency, UlpDistance, side_error, tf32_consistency, \
    ulp_distance
from convdiff.reference.rounding import (PROBABILISTIC_C, UNIT_ROUNDOFF, Arithmetic, BoundForm, Gamma,
                                         RoundingModel, abs_convolution, gamma, round_to_tf32, rounding_bound,
                                         tf32_reference, ulp)

__all__ = ["PROBABILISTIC_C", "UNIT_ROUNDOFF", "Arithmetic", "BoundForm", "Gamma", "RoundingModel", "SideError",
           "ThreeWay", "Tf32Consistency", "UlpDistance", "abs_convolution", "gamma", "round_to_tf32", "rounding_bound",
           "side_error", "tf32_consistency", "tf32_reference", "ulp", "ulp_distance"]

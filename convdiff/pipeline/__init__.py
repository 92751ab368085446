"""The one way a case runs: the case types and `execute`."""

from convdiff.pipeline.case import SIDES, Case, CaseOptions, CaseResult, SideConfig, SideRun
from convdiff.pipeline.execute import check_case, execute

__all__ = ["SIDES", "Case", "CaseOptions", "CaseResult", "SideConfig", "SideRun", "check_case", "execute"]

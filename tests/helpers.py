"""Small helpers shared by several test modules."""


def strip_timings(value):  # noqa: ANN001, ANN201
    """A JSON document without its `seconds` keys: the only part allowed to change between reruns."""
    if isinstance(value, dict):
        return {k: strip_timings(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [strip_timings(v) for v in value]
    return value


def run_case(name, reference, candidate, options=None):  # noqa: ANN001, ANN201
    """One case through the pipeline, as every command runs it."""
    from convdiff.pipeline import Case, CaseOptions, execute

    return execute(Case(name, reference, candidate, options or CaseOptions()))

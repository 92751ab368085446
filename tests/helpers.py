"""Small helpers shared by several test modules."""


def strip_timings(value, also=()):  # noqa: ANN001, ANN201
    """A JSON document without its `seconds` keys (and the keys in `also`): what may change between reruns."""
    if isinstance(value, dict):
        return {k: strip_timings(v, also) for k, v in value.items() if k != "seconds" and k not in also}
    if isinstance(value, list):
        return [strip_timings(v, also) for v in value]
    return value


def run_case(name, reference, candidate, options=None):  # noqa: ANN001, ANN201
    """One case through the pipeline, as every command runs it."""
    from convdiff.pipeline import Case, CaseOptions, execute

    return execute(Case(name, reference, candidate, options or CaseOptions()))


def run_processes(commands, env=None, timeout=300):  # noqa: ANN001, ANN201
    """Run several command lines at once (their start-up, importing TensorFlow, dominates): CompletedProcesses."""
    import subprocess

    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for c in commands]
    done = []
    for command, proc in zip(commands, procs):
        out, err = proc.communicate(timeout=timeout)
        done.append(subprocess.CompletedProcess(command, proc.returncode, out, err))
    return done

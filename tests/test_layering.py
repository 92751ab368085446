"""The package layout is the data flow: lower layers never import higher ones, and no module imports
itself back through others. Every import is parsed, function-level ones included."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "convdiff"

# Lowest first. A module may import its own layer and the layers below it, never one above.
LAYERS = (
    ("errors", "frameworks", "__init__"),
    ("spec",),
    ("data",),
    ("reference",),
    ("backends",),
    ("compare",),
    ("analysis",),
    ("pipeline",),
    ("suites",),
    ("report",),
    ("cli",),
    ("testing", "precision", "__main__"),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in names:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("convdiff"):
                targets.add(target)
    return targets


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in modules() if layer(m) not in RANK)
    assert not unplaced, f"modules outside the layers of the data flow: {unplaced}"


def test_no_upward_import():
    upward = [f"{m} -> {t}" for m, targets in graph().items() for t in sorted(targets)
              if RANK[layer(t)] > RANK[layer(m)]]
    assert not upward, "lower layers import higher ones:\n" + "\n".join(upward)


def test_no_import_cycle():
    g = graph()
    # A package's __init__ re-exporting its own modules is not a cycle of the data flow.
    edges = {m: {t for t in ts if not (t.startswith(m + ".") or m.startswith(t + ".") and t == m.rpartition(".")[0])}
             for m, ts in g.items()}
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]) if nxt in path else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_top_level_holds_a_handful_of_modules():
    top = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(top) <= 6, top

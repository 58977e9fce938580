"""The package's shape, checked: imports only go one way, in the stage order ARCHITECTURE.md
states, and every function fits on a screen.

Import graph: every module under localdigest/ is parsed with `ast` and each import of a
localdigest module becomes an edge, wherever it stands (module level, inside a function, under
TYPE_CHECKING, in a package `__init__`). `from localdigest.pkg import name` is an edge to the
package `localdigest.pkg` (its face: the name is looked up there, so its `__init__` must have
run) and, when `name` is a submodule, to that submodule too. `import localdigest.pkg.mod`
names the submodule only: it needs nothing the face defines. So a package face that imports a
submodule (even lazily) makes a cycle with any submodule that imports from the face.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "localdigest"
MAX_FUNCTION_LINES = 80


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imported(node: ast.AST, module: str, is_package: bool, known: set[str]) -> list[str]:
    """The localdigest modules one import statement in `module` refers to."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in known]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:  # relative: resolved against the importing module's package
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    found = [source] if source in known else []
    return found + [f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in known]


def import_graph() -> dict[str, set[str]]:
    """module -> the localdigest modules it imports anywhere in its text."""
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        edges = {t for n in ast.walk(tree) for t in _imported(n, name, is_package, known)}
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_import_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    assert "localdigest.backends.llama" in graph["localdigest.backends"]  # inside load_backend


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_importing_from_a_package_face_is_an_edge_to_the_face() -> None:
    graph = import_graph()
    assert "localdigest.generate" in graph["localdigest.generate.digester"]  # import checks
    assert graph["localdigest.generate"] == set()  # so the face imports no submodule


def stages() -> list[tuple[str, set[str]]]:
    """The stages of ARCHITECTURE.md's table, in order, with the modules each names."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    known = set(_modules())
    found: list[tuple[str, set[str]]] = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) < 4 or not cells[2].startswith("`"):
            continue
        if cells[1]:
            found.append((cells[1], set()))
        for name in re.findall(r"`([\w/]+)(?:\.py|/)`", cells[2]):
            module = "localdigest." + name.replace("/", ".")
            found[-1][1].update(m for m in known if m == module or m.startswith(module + "."))
    return found


def test_architecture_md_places_every_module_in_one_stage() -> None:
    placed = [m for _, modules in stages() for m in modules]
    assert sorted(set(_modules()) - {"localdigest"} - set(placed)) == []
    assert len(placed) == len(set(placed))


def test_each_stage_imports_only_itself_and_the_stages_before_it() -> None:
    """ARCHITECTURE.md's order: a module imports only its own stage and the ones above it."""
    order = {m: i for i, (_, modules) in enumerate(stages()) for m in modules}
    graph = import_graph()
    later = [
        f"{source} -> {target}"
        for source, targets in graph.items()
        for target in targets
        if target in order and source in order and order[target] > order[source]
    ]
    assert later == []


def test_checks_and_eval_load_no_click_and_no_generation_stack() -> None:
    """`localdigest eval` and the render flags read the checks table, nothing heavier."""
    code = (
        "import sys, localdigest.evaluate, localdigest.generate.checks; "
        "print(' '.join(m for m in sys.modules if m == 'click' or m.startswith("
        "('localdigest.generate.tasks', 'localdigest.generate.digester', 'localdigest.backend'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []


def _long_functions(folder: Path) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    where = path.relative_to(ROOT)
                    found.append(f"{where}:{node.lineno} {node.name} ({length} lines)")
    return found


@pytest.mark.parametrize("folder", ["localdigest", "benchmarks", "scripts"])
def test_no_function_is_longer_than_a_screen(folder: str) -> None:
    assert _long_functions(ROOT / folder) == []

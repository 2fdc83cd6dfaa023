"""The package's layers: each part imports only the parts below it, so there is no import cycle
and the path of a text runs one way. ARCHITECTURE.md describes the same order."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "assistant"

# Top to bottom. A part may import any part after it in this list, never one before it.
# Entries are subpackages or top-level modules; web modules not yet in `web/` count as web.
LAYERS: list[set[str]] = [
    {"cli"},
    {"app"},
    {"web", "dashboard", "webhooks", "auth", "limits", "views_data", "unknown_numbers"},
    {"jobs"},
    {"imports"},
    {"reporting"},
    {"conversation"},
    {"contact"},
    {"sessions"},
    {"sending"},
    {"care"},
    {"outbox"},
    {"runtime"},
    {"content"},
    {"db"},
    {"engine"},
    {"transports", "logs"},
    {"config", "clock", "timing", "windows", "phones", "signing"},
]


def part_of(module: str) -> str:
    parts = module.split(".")
    return "assistant" if len(parts) == 1 else parts[1]


def rank(part: str) -> int:
    for index, layer in enumerate(LAYERS):
        if part in layer:
            return index
    raise AssertionError(f"assistant.{part} is in no layer: add it to LAYERS and ARCHITECTURE.md")


def imports_of(path: Path, *, typing_only: bool = True) -> list[tuple[str, int]]:
    """Every assistant module this file imports, at any depth (function-level imports count);
    without `typing_only`, leaving out those under `if TYPE_CHECKING:`, which never run."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    if not typing_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                skip |= {id(inner) for inner in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("assistant"):
            if node.module == "assistant":
                found += [(f"assistant.{alias.name}", node.lineno) for alias in node.names]
            else:
                found.append((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.startswith("assistant")]
    return found


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "db" and "migrations" in relative.parts:
            continue
        name = ".".join(("assistant", *relative.with_suffix("").parts)).removesuffix(".__init__")
        found.append((name, path))
    return found


def test_every_import_points_down_the_layers() -> None:
    upward = []
    for name, path in modules():
        if name == "assistant":
            continue  # the package itself only re-exports create_app
        mine = part_of(name)
        for target, line in imports_of(path):
            theirs = part_of(target)
            if theirs != mine and theirs != "assistant" and rank(theirs) < rank(mine):
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} {name} imports {target}")
    assert upward == [], "imports against the layers:\n" + "\n".join(upward)


def test_no_import_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    known = {name for name, _ in modules()}
    for name, path in modules():
        graph[name] = {t for t, _ in imports_of(path, typing_only=False) if t in known and t != name}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    # A package's __init__ re-exporting its own module is not a cycle in use.
    real = [c for c in cycles if not any(part == c[0].rpartition(".")[0] for part in c[1:])]
    assert real == [], f"import cycles: {real}"


def test_every_package_says_what_it_owns_and_may_import() -> None:
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert len(doc.split()) >= 15, f"{init.parent.name}/__init__.py needs a paragraph on what it owns"
        assert "import" in doc, f"{init.parent.name}/__init__.py should say what it may import"


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    """The check itself can fail: an import from care up into conversation is reported."""
    sample = tmp_path / "sample.py"
    sample.write_text("from assistant.conversation.router import HANDLERS\n", encoding="utf-8")
    ((target, _),) = imports_of(sample)
    assert rank(part_of(target)) < rank("care")


MOST_LINES_IN_A_MODULE = 400
MOST_LINES_IN_A_FUNCTION = 60


def oversized(path: Path) -> list[str]:
    """The module itself if it is too long, and each function in it that is (decorators aside)."""
    source = path.read_text(encoding="utf-8")
    found = []
    if len(source.splitlines()) > MOST_LINES_IN_A_MODULE:
        found.append(f"{path.name}: {len(source.splitlines())} lines")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
            length = node.end_lineno - node.lineno + 1
            if length > MOST_LINES_IN_A_FUNCTION:
                found.append(f"{path.name}:{node.lineno} {node.name}: {length} lines")
    return found


def test_modules_and_functions_stay_small_enough_to_read() -> None:
    """A module a newcomer can read in one sitting, a function on one screen."""
    too_big = [item for _name, path in modules() for item in oversized(path)]
    assert too_big == []


def test_an_oversized_function_is_caught(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    body = "\n".join(f"    x{i} = {i}" for i in range(MOST_LINES_IN_A_FUNCTION))
    sample.write_text(f"def long() -> None:\n{body}\n", encoding="utf-8")
    assert oversized(sample) == [f"sample.py:1 long: {MOST_LINES_IN_A_FUNCTION + 1} lines"]

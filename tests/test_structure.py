"""The package's shape: no import cycle, and no module imports another module's _private name."""

from __future__ import annotations

import ast
from pathlib import Path

import grokinterp

PACKAGE = Path(grokinterp.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(path: Path, known: set[str]) -> list[tuple[str, str, int]]:
    """(module imported, name or '', line) of every grokinterp import in a file, the ones
    inside functions included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "grokinterp":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.append((sub if sub in known else node.module, alias.name, node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "grokinterp":
                    found.append((alias.name, "", node.lineno))
    return found


def test_no_module_imports_a_private_name_of_another():
    modules = _modules()
    bad = [
        f"{name} line {line}: {name_imported} from {target}"
        for name, path in modules.items()
        for target, name_imported, line in _imports(path, set(modules))
        if name_imported.startswith("_") and not name_imported.startswith("__")
    ]
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


def test_no_import_cycle():
    modules = _modules()
    graph = {
        name: {t for t, _, _ in _imports(path, set(modules)) if t in modules and t != name}
        for name, path in modules.items()
    }
    # a package's __init__ that re-exports its own submodules is not a cycle with them
    for name in graph:
        graph[name] = {t for t in graph[name] if not t.startswith(name + ".")}
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            raise AssertionError("import cycle: " + " -> ".join(cycle))

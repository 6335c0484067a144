"""The store's shape: its modules import each other at the top only and in one
direction (no circles), and nothing outside it talks to Redis."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "gateway" / "store"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module(p): p for p in STORE.rglob("*.py")}


def _imports(tree: ast.AST, known: dict[str, Path]) -> set[str]:
    """The modules of the store that a module's import statements name."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:   # `from package import module` names the module, not the package
                found.add(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module)
    return found & set(known)


# The one import made when used: the Redis store, with redis-py, loads only where a config names Redis.
_LOADED_WHEN_USED = {("gateway.store", "gateway.store.redis")}


def test_imports_are_at_the_top_of_each_module():
    for name, path in _modules().items():
        tree = ast.parse(path.read_text())
        top = {id(n) for n in tree.body}
        late = [n.lineno for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in top
                and (name, getattr(n, "module", None)) not in _LOADED_WHEN_USED]
        assert not late, f"{name} imports inside a function or block at lines {late}"


def test_an_embedded_gateway_does_not_load_redis():
    code = "import sys, gateway.app; print(any(m == 'redis' or m.startswith('redis.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_store_has_no_import_circles():
    known = _modules()
    edges = {name: _imports(ast.parse(path.read_text()), known) - {name} for name, path in known.items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(name):] + [name]))
        if name in done:
            return
        for nxt in sorted(edges[name]):
            visit(nxt, path + [name])
        done.add(name)

    for name in sorted(edges):
        visit(name, [])


def test_nothing_outside_the_store_talks_to_redis():
    talkers = []
    for path in [*(ROOT / "gateway").rglob("*.py"), *(ROOT / "providers").rglob("*.py")]:
        if STORE in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            if any(n == "redis" or n.startswith("redis.") for n in names):
                talkers.append(str(path.relative_to(ROOT)))
    assert not talkers

"""The code's shape, as docs/architecture.md draws it: providers/ is a leaf,
no module of the gateway or the providers reaches back into one that
imports it (late imports count; annotations under TYPE_CHECKING do not), and
the gateway's own answer headers are named in one place."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gateway", "providers")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules a module imports when it runs, wherever the statement is."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if _is_type_checking(node):
            node.body = []      # type: ignore[attr-defined]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:   # `from package import module` names the module, not the package
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in known else node.module)
    resolved = set()
    for name in found:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name:
            resolved.add(name)
    return resolved


def test_providers_import_nothing_from_the_gateway():
    known = _modules()
    upward = {name: sorted(m for m in _imports(path, known) if m.split(".")[0] == "gateway")
              for name, path in known.items() if name.startswith("providers")}
    assert {k: v for k, v in upward.items() if v} == {}


def test_no_import_circles():
    known = _modules()
    edges = {name: _imports(path, known) - {name} for name, path in known.items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import circle: " + " -> ".join([*path[path.index(name):], name]))
        if name in done:
            return
        for nxt in sorted(edges[name]):
            if nxt.startswith(name + "."):
                continue        # a package importing its own modules is loading them, not a circle
            visit(nxt, [*path, name])
        done.add(name)

    for name in sorted(edges):
        visit(name, [])


def test_gateway_headers_are_named_in_the_exchange_only():
    spelled = [str(p.relative_to(ROOT)) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
               if b'b"x-gateway-' in p.read_bytes() and p != ROOT / "gateway" / "exchange.py"]
    assert spelled == []

"""The shape of the package, as docs/architecture.md draws it: every module sits on a level, and
imports only from its own level or below; no import cycles. A new module must be given a level
here (and in the document), which is the moment to ask where it belongs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "secretscan"

LEVELS: dict[int, set[str]] = {
    0: {"version", "errors", "models", "redact", "terminal", "safewrite", "deadline", "codec", "parallel", "limits", "origin", "heap"},
    1: {"image", "detect", "provenance"},
    2: {"walk"},
    3: {"sources", "stores", "verify"},
    4: {"config"},
    5: {"detection", "findings", "enrich"},
    6: {"scan", "streamlayers"},
    7: {"sweep"},
    8: {"progress", "report", "baseline", "docker_plugin", "about", "completion", "outputs"},
    9: {"api", "cli", "prebuild", "__init__", "__main__"},
}
"""By unit: a top-level module, or a subpackage as a whole."""


def _unit(module: str) -> str:
    """``secretscan.walk.layer`` -> ``walk``; ``secretscan.scan`` -> ``scan``; ``secretscan`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(module: str, path: Path) -> set[str]:
    """The secretscan modules ``module`` imports, wherever in the file (a function-level import
    is still a dependency)."""
    out = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("secretscan")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            if base.startswith("secretscan"):
                out.add(base)
    return out


def _level(unit: str) -> int:
    for level, units in LEVELS.items():
        if unit in units:
            return level
    raise AssertionError(f"secretscan/{unit}: give it a level in tests/test_architecture.py and docs/architecture.md")


def test_every_import_points_to_the_same_level_or_below() -> None:
    upward = []
    for module, path in _modules().items():
        here = _level(_unit(module))
        for target in _imports(module, path):
            there = _level(_unit(target))
            if there > here:
                upward.append(f"{module} (level {here}) imports {target} (level {there})")
    assert upward == []


def test_no_import_cycles() -> None:
    modules = _modules()
    graph = {m: {t for t in _imports(m, p) if t in modules and t != m} for m, p in modules.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def test_the_document_names_every_unit_at_its_level() -> None:
    text = (REPO / "docs" / "architecture.md").read_text()
    for level, units in LEVELS.items():
        line = next((ln for ln in text.splitlines() if ln.startswith(f"| {level} |")), None)
        assert line is not None, f"docs/architecture.md has no row for level {level}"
        for unit in units:
            assert f"`{unit}`" in line, f"docs/architecture.md: level {level} does not name `{unit}`"


def test_the_cli_starts_without_the_http_stack() -> None:
    """``requests`` and what it brings (urllib3, http.client, ssl, email) cost a run about a
    quarter of its start-up, before any work, and a local scan never speaks HTTP: only a registry
    source, a sweep, ``--verify`` or a store imports them, where it is used."""
    heavy = ("requests", "urllib3", "http.client", "ssl", "email")
    script = f"import secretscan.cli, sys; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"

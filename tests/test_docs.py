"""The docs' commands work: every fenced block marked ``sh test`` in README.md and docs/*.md is run,
line by line, in a scratch directory holding the demo image, with this checkout's secretscan on
PATH. A line's expected exit code is its trailing ``# exit N`` comment, else 0."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```sh test\n(.*?)^```", re.M | re.S)
_EXIT = re.compile(r"#\s*exit\s+(\d+)\s*$")


def _blocks() -> list[tuple[str, int, str]]:
    found = []
    for page in PAGES:
        for n, m in enumerate(_BLOCK.finditer(page.read_text())):
            found.append((page.name, n, m.group(1)))
    return found


BLOCKS = _blocks()


def test_the_docs_have_tested_commands() -> None:
    assert {name for name, _, _ in BLOCKS} >= {"quickstart.md", "inputs.md"}


@pytest.mark.parametrize(("page", "index", "block"), BLOCKS, ids=[f"{p}#{i}" for p, i, _ in BLOCKS])
def test_doc_block_runs(page: str, index: int, block: str, tmp_path: Path) -> None:
    (tmp_path / "fixtures").mkdir()
    shutil.copy(REPO / "fixtures" / "demo-image.tar", tmp_path / "fixtures" / "demo-image.tar")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("SECRETSCAN_CONFIG", None)
    for line in block.splitlines():
        command = line.strip()
        if not command or command.startswith("#"):
            continue
        expected = int(m.group(1)) if (m := _EXIT.search(command)) else 0
        result = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == expected, f"{page}: `{command}` exited {result.returncode}\n{result.stderr[-1500:]}"
        assert "Traceback" not in result.stderr


def _security_references() -> list[tuple[str, str]]:
    """(test file stem, test or corpus case name) for every test SECURITY.md cites: in a table
    cell, ``file::name`` or ``hostile_corpus:name`` sets the file, and bare names after it share it."""
    refs: list[tuple[str, str]] = []
    for line in (REPO / "SECURITY.md").read_text().splitlines():
        if not line.startswith("|") or "---" in line:
            continue
        current: str | None = None
        for token in re.findall(r"`([^`]+)`", line.split("|")[2] if line.count("|") >= 3 else ""):
            if "::" in token:
                current, _, name = token.partition("::")
            elif token.startswith("hostile_corpus:"):
                current, name = "hostile_corpus", token.split(":", 1)[1]
            elif (REPO / "tests" / f"{token}.py").is_file():  # a whole test file
                refs.append((token, ""))
                current = None
                continue
            elif re.fullmatch(r"\w+", token) and current is not None:
                name = token
            else:
                continue
            refs.append((current, name))
    return refs


def test_security_md_cites_only_tests_that_exist() -> None:
    refs = _security_references()
    assert len(refs) > 60
    missing = []
    for stem, name in refs:
        stem = {"hostile_registry": "test_hostile_registry", "hostile_corpus": "test_hostile_corpus"}.get(stem, stem)
        source = REPO / "tests" / f"{stem}.py"
        if not source.is_file() or (name and not re.search(rf"^def {re.escape(name)}\(", source.read_text(), re.M)):
            missing.append(f"{stem}::{name}")
    assert not missing, missing

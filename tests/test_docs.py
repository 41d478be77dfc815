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

"""secretscan scans its own repository clean: no committed secrets outside the allowlisted fixtures."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO


def test_repository_scans_clean(cli, tmp_path: Path) -> None:
    try:
        tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"cannot list the repository's files with git: {exc}")
    root = tmp_path / "repo"
    for name in filter(None, tracked.decode().split("\0")):
        src = REPO / name
        if src.is_file() and not src.is_symlink():
            dest = root / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
    assert (root / "secretscan" / "cli.py").is_file()
    result = cli("scan", f"dir:{root}", "--config", REPO / "secretscan.yaml", "--quiet")
    assert result.code == 0, result.out

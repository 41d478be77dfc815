"""The wheel users install holds what a checkout has: the rule pack (a symlink in the source tree),
the known test keys and the py.typed marker."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO


def test_wheel_carries_the_rule_pack_and_type_marker(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path), str(REPO)],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("secretscan-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    rule_files = {p.name for p in (REPO / "patterns").glob("*.yaml")}
    assert {f"secretscan/data/patterns/{n}" for n in rule_files} <= names
    assert "secretscan/data/patterns/known-test-keys.yaml" in names and "secretscan/py.typed" in names

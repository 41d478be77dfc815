"""The wheel users install holds what a checkout has: the rule pack (a symlink in the source tree),
the known test keys and the py.typed marker, the compiled tar header reader; and the built-in rule set compiled, so that its first
scan starts warm."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO


def test_wheel_carries_the_rule_pack_and_type_marker_and_starts_warm(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path), str(REPO)],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("secretscan-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    rule_files = {p.name for p in (REPO / "patterns").glob("*.yaml")}
    assert {f"secretscan/data/patterns/{n}" for n in rule_files} <= names
    assert "secretscan/data/patterns/known-test-keys.yaml" in names and "secretscan/py.typed" in names
    # the compiled tar header reader, with its types
    assert any(n.startswith("secretscan/walk/headers.") and n.endswith(".so") for n in names), names
    assert "secretscan/walk/headers.pyi" in names
    pytest.importorskip("hyperscan", reason="the compiled database exists only with Hyperscan")
    shipped = {n.rsplit("/", 1)[1].split("-")[0] for n in names if n.startswith("secretscan/data/prebuilt/")}
    assert {"hyperscan", "published", "MANIFEST"} <= shipped, shipped
    # installed from the wheel alone, its first scan with an empty cache compiles nothing
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    script = (
        "import sys, secretscan.cli as cli; "
        f"assert cli.__file__.startswith({str(site)!r}), cli.__file__; "
        "sys.exit(cli.main(sys.argv[1:]))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "HOME": str(tmp_path / "home"),
        "XDG_CACHE_HOME": str(tmp_path / "xdg"),
    }
    env.pop("SECRETSCAN_CACHE_DIR", None)
    demo = REPO / "fixtures" / "demo-image.tar"
    scan = subprocess.run(
        [sys.executable, "-c", script, "scan", str(demo), "-f", "json", "--no-progress", "--cache-dir", str(tmp_path / "c")],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert scan.returncode == 1, scan.stderr
    assert "compiling the rule database" not in scan.stderr and not (tmp_path / "c").exists()
    assert len(json.loads(scan.stdout)["findings"]) == 10

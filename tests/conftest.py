"""Shared helpers: build real image files from specs, run the real CLI, read its JSON report."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from secretscan.cli import main  # noqa: E402

# Real servers (registry, token issuer, dockerd, moto) as fixtures: see conftest_servers.py and servers.py.
pytest_plugins = ["conftest_servers"]

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def report(self) -> dict[str, Any]:
        return json.loads(self.out)


ONE_WORKER_FIXTURES = frozenset({"docker_daemon", "built_image"})
"""Fixtures too costly to start once per test worker: a dockerd on the vfs storage driver copies
every layer it creates, and the container image is built from the checkout."""
ONE_WORKER_MODULES = frozenset({"test_packaging.py", "test_container_image.py"})
"""Tests that build a wheel from the checkout, in its build/ directory: never two at once."""


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups into the tests' ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``make test`` runs ``-n auto --dist loadgroup``), the tests that share
    dockerd or the checkout's build directory go to one worker, one after another; every other
    test runs wherever there is room, with its own servers per worker."""
    for item in items:
        if ONE_WORKER_FIXTURES & set(getattr(item, "fixturenames", ())) or item.path.name in ONE_WORKER_MODULES:
            item.add_marker(pytest.mark.xdist_group("docker-and-build"))


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Caches (the compiled Hyperscan database) go to a session directory, not the user's home."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., CliResult]:
    """Run ``secretscan ARGS`` in-process, from an empty working directory (no stray config)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SECRETSCAN_CONFIG", raising=False)
    monkeypatch.delenv("SECRETSCAN_FINGERPRINT_KEY", raising=False)
    monkeypatch.delenv("CI_COMMIT_SHA", raising=False)  # set when the suite itself runs in GitLab CI

    def run(*args: str | Path) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def own_rule_dir(tmp_path: Path) -> Path:
    """A rule directory of the user's own (one made-up token format): a rule set nothing shipped
    was compiled for, so a scan with it compiles and caches its database."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "team.yaml").write_text(
        "rules:\n  - id: team.token\n    name: Team token\n    pattern: '(tmtok_[a-z0-9]{24})'\n"
        "    keywords: [tmtok_]\n    severity: high\n    examples: ['tmtok_0123456789abcdefghijklmn']\n"
        "    negative_examples: ['tmtok_short']\n"
    )
    return rules


def fingerprint_of(secret: str) -> str:
    """A secret's fingerprint as reports show it (HMAC-SHA256 under the documented default key),
    computed here independently of secretscan's code."""
    digest = hmac.new(b"secretscan/fingerprint/v1", secret.encode(), hashlib.sha256).hexdigest()
    return "ssf1:" + digest[:32]


def scan_json(cli: Callable[..., CliResult], image: str | Path, *extra: str) -> dict[str, Any]:
    result = cli("scan", str(image), "--format", "json", "--quiet", *extra)
    assert result.code in (0, 1), result.err
    return result.report


LOCATION_KEYS = ("layer_index", "path", "line", "exposure", "removed_in_layer", "removed_how", "created_by")


def findings_key(report: dict[str, Any]) -> list[Any]:
    """What must agree when one image is scanned from two sources: each secret, its rule, and
    where it was seen (by layer, path and line; not by image name or digest)."""
    return sorted(
        (f["rule_id"], f["secret"], tuple(sorted(tuple(loc[k] for k in LOCATION_KEYS) for loc in f["locations"])))
        for f in report["findings"]
    )


def locations(report: dict[str, Any], rule_id: str | None = None) -> list[dict[str, Any]]:
    return [loc for f in report["findings"] if rule_id in (None, f["rule_id"]) for loc in f["locations"]]


def sarif_errors(tool: str, path: Path) -> list[str]:
    """Microsoft's SARIF Multitool on ``path``: its ``error`` lines (it exits 0 either way). Fails
    when the tool did not finish its analysis, so a broken tool never reads as a clean file."""
    validation = subprocess.run([tool, "validate", str(path)], capture_output=True, text=True, timeout=300)
    lines = (validation.stdout + validation.stderr).splitlines()
    assert any("Analysis completed successfully" in ln or "Done." in ln for ln in lines), validation.stdout[-2000:]
    return [ln for ln in lines if ": error " in ln or ln.lstrip().startswith("error")]


@pytest.fixture(scope="session")
def sarif_multitool() -> str:
    tool = (
        os.environ.get("SARIF_MULTITOOL")
        or shutil.which("sarif-multitool")
        or str(REPO / ".tools/node_modules/.bin/sarif-multitool")
    )
    if not Path(tool).exists():
        if IN_CI:
            pytest.fail("SARIF Multitool is not installed (make test installs it with npm)")
        pytest.skip("SARIF Multitool is not installed: run `make test`, which installs it with npm")
    return tool


@pytest.fixture(scope="session")
def junit_schema():  # type: ignore[no-untyped-def]
    from lxml import etree

    path = Path(os.environ.get("JUNIT_XSD") or REPO / ".tools" / "junit-10.xsd")
    if not path.exists():
        if IN_CI:
            pytest.fail("junit-10.xsd is not installed (make test fetches it)")
        pytest.skip("junit-10.xsd is not installed: run `make test`, which fetches it")
    return etree.XMLSchema(etree.parse(str(path)))


def junit_valid(schema, text: str):  # type: ignore[no-untyped-def]
    from lxml import etree

    doc = etree.fromstring(text.encode())
    assert schema.validate(doc), schema.error_log
    return doc


def gitlab_report_errors(doc: Any) -> list[str]:
    """Where a GitLab secret-detection report breaks the constraints of schema 15.2
    (tests/schemas/gitlab-secret-detection-15.2.json), one line each."""
    import jsonschema

    schema = json.loads((REPO / "tests" / "schemas" / "gitlab-secret-detection-15.2.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]

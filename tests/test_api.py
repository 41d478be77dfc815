"""The Python API: ``secretscan.scan_image`` returns what ``secretscan scan`` reports, typed, so
other tools can embed the scanner; a consumer type-checks against the package (py.typed)."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import secretgen
from conftest import REPO
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive

import secretscan

DEMO = REPO / "fixtures" / "demo-image.tar"


def test_scan_image_matches_the_cli_json_report(cli) -> None:
    report = secretscan.scan_image(str(DEMO))
    assert isinstance(report, secretscan.ScanReport)
    from_cli = cli("scan", DEMO, "-f", "json", "-q").report
    assert secretscan.report_json(report)["findings"] == from_cli["findings"]
    assert secretscan.report_json(report)["schema_version"] == secretscan.REPORT_SCHEMA_VERSION == 1
    top = report.findings[0]
    assert isinstance(top.severity, secretscan.Severity) and top.secret is None
    assert isinstance(top.locations[0], secretscan.Location) and top.locations[0].describe()


def test_options_show_secrets_limits_and_errors(tmp_path: Path) -> None:
    token = secretgen.github_pat()
    image = tmp_path / "image.tar"
    inner = tmp_path / "inner.tar"
    write_docker_archive(inner, ImageSpec([Layer([Entry("t.txt", f"token: {token}\n".encode())])]))
    write_docker_archive(image, ImageSpec([Layer([Entry("app/t.txt", f"token: {token}\n".encode())])]))
    report = secretscan.scan_image(f"docker-archive:{image}", show_secrets=True)
    assert [f.secret for f in report.findings] == [token]
    assert report.complete
    limited = secretscan.scan_image(f"docker-archive:{image}", limits={"max_layer_bytes": 1024})
    assert not limited.complete and "max_layer_bytes" in limited.skipped[0].reason
    with pytest.raises(secretscan.SecretScanError, match="no such file"):
        secretscan.scan_image(str(tmp_path / "missing.tar"))
    with pytest.raises(secretscan.SecretScanError, match="unknown limit 'max_bogus'"):
        secretscan.scan_image(f"docker-archive:{image}", limits={"max_bogus": 1})


def test_a_consumer_type_checks_against_the_package(tmp_path: Path) -> None:
    consumer = tmp_path / "consumer.py"
    consumer.write_text(
        textwrap.dedent(
            """
            from secretscan import Severity, scan_image, ScanReport

            def high(ref: str) -> list[str]:
                report: ScanReport = scan_image(ref, limits={"max_nested_depth": 2})
                return [f.fingerprint for f in report.findings if f.severity >= Severity.HIGH]

            wrong: int = scan_image("x")  # must be reported: scan_image returns a ScanReport
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(consumer)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    errors = [ln for ln in result.stdout.splitlines() if ": error:" in ln]
    assert len(errors) == 1 and ":8:" in errors[0] and "ScanReport" in errors[0], result.stdout


def test_config_is_a_str_or_a_path_and_a_bad_one_raises_a_config_error(tmp_path: Path) -> None:
    from secretscan.errors import ConfigError

    plain = secretscan.scan_image(str(DEMO))
    cfg = tmp_path / "secretscan.yaml"
    cfg.write_text(f"allowlist:\n  rules: [{plain.findings[0].rule_id}]\n")
    for config in (str(cfg), cfg):
        report = secretscan.scan_image(str(DEMO), config=config)
        assert report.suppressed >= 1 and plain.findings[0].rule_id not in {f.rule_id for f in report.findings}
    cfg.write_text("limits:\n  max_nested_depth: lots\n")
    with pytest.raises(secretscan.SecretScanError) as raised:
        secretscan.scan_image(str(DEMO), config=str(cfg))
    assert isinstance(raised.value, ConfigError)
    assert str(raised.value) == (
        f"{cfg}:2:21: limits.max_nested_depth: expected a whole number, optionally with a unit "
        "(K/KiB, M/MiB, G/GiB, T/TiB), not 'lots'"
    )
    with pytest.raises(ConfigError, match=r"^missing\.yaml: config file not found$"):
        secretscan.scan_image(str(DEMO), config="missing.yaml")


def test_limits_take_the_values_the_cli_takes(tmp_path: Path) -> None:
    image = tmp_path / "image.tar"
    write_docker_archive(image, ImageSpec([Layer([Entry("big.txt", b"x" * 5000)])]))
    limited = secretscan.scan_image(f"docker-archive:{image}", limits={"max_layer_bytes": "2KiB"})
    assert not limited.complete and "max_layer_bytes" in limited.skipped[0].reason
    with pytest.raises(secretscan.SecretScanError) as raised:
        secretscan.scan_image(f"docker-archive:{image}", limits={"max_nested_depth": "lots"})
    assert str(raised.value) == (
        "limits.max_nested_depth: expected a whole number, optionally with a unit (K/KiB, M/MiB, G/GiB, T/TiB), "
        "not 'lots'"
    )


def test_an_unreachable_registry_is_one_clean_line() -> None:
    """A closed loopback port: the error says what happened in words, not in urllib3's repr."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(secretscan.SecretScanError) as raised:
        secretscan.scan_image(
            f"docker://127.0.0.1:{port}/team/app:1",
            registry=secretscan.RegistryOptions(retries=1, backoff_seconds=0.01),
        )
    assert str(raised.value) == f"127.0.0.1:{port}/team/app: cannot reach 127.0.0.1:{port} (connection refused)"

"""secretscan.yaml (extra rules, allowlists, limits) and baselines."""

from __future__ import annotations

import secrets
from pathlib import Path

import secretgen
from conftest import REPO, scan_json
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive

DEMO = REPO / "fixtures" / "demo-image.tar"


def _image(tmp_path: Path, files: dict[str, str]) -> Path:
    path = tmp_path / "img.tar"
    write_docker_archive(path, [ImageSpec(steps=[Layer([Entry(p, d.encode()) for p, d in files.items()])])])
    return path


def test_baseline_makes_ci_fail_only_on_new_findings(cli, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    assert cli("baseline", DEMO, "--output", baseline, "--quiet").code == 0
    text = baseline.read_text()
    shown = scan_json(cli, DEMO, "--show-secrets")
    assert all(f["secret"] not in text for f in shown["findings"]), "a baseline must not store secrets"
    accepted = cli("scan", DEMO, "--baseline", baseline, "--format", "json", "--quiet")
    assert accepted.code == 0 and accepted.report["findings"] == []
    assert accepted.report["suppressed"] == len(shown["findings"])


def test_new_secret_fails_despite_baseline(cli, tmp_path: Path) -> None:
    old = secretgen.github_pat()
    image = _image(tmp_path, {"a.txt": f"{old}\n"})
    baseline = tmp_path / "b.json"
    cli("baseline", image, "--output", baseline, "--quiet")
    image = _image(tmp_path, {"a.txt": f"{old}\n", "b.txt": f"{secretgen.github_pat()}\n"})
    result = cli("scan", image, "--baseline", baseline, "--format", "json", "--quiet")
    assert result.code == 1 and len(result.report["findings"]) == 1
    assert result.report["findings"][0]["locations"][0]["path"] == "/b.txt"


def test_allowlist_by_path_rule_fingerprint_and_regex(cli, tmp_path: Path) -> None:
    a, b, c, d = (secretgen.github_pat() for _ in range(4))
    image = _image(
        tmp_path,
        {"docs/a.txt": f"{a}\n", "b.txt": f"{b}\n", "c.txt": f"{c}\n", "d.txt": f"npm {secretgen.npm_token()}\n{d}\n"},
    )
    report = scan_json(cli, image)
    fp_c = next(f["fingerprint"] for f in report["findings"] if f["locations"][0]["path"] == "/c.txt")
    npm_rule = next(f["rule_id"] for f in report["findings"] if f["redacted"].startswith("npm_"))
    cfg = tmp_path / "secretscan.yaml"
    cfg.write_text(
        "allowlist:\n"
        "  paths: ['/docs/*']\n"
        f"  rules: [{npm_rule}]\n"
        f"  fingerprints: ['{fp_c}']\n"
        f"  regexes: ['^{b[:12]}']\n"
    )
    result = scan_json(cli, image, "--config", str(cfg))
    assert [f["locations"][0]["path"] for f in result["findings"]] == ["/d.txt"]
    assert result["suppressed"] == 4


def test_config_is_read_from_the_working_directory(cli, tmp_path: Path) -> None:
    image = _image(tmp_path, {"docs/a.txt": f"{secretgen.github_pat()}\n"})
    (tmp_path / "secretscan.yaml").write_text("allowlist:\n  paths: ['/docs/*']\n")
    assert cli("scan", image, "--quiet").code == 0


def test_extra_rule_dir_adds_a_credential_type_without_code(cli, tmp_path: Path) -> None:
    token = "acme_" + secrets.token_hex(12)
    image = _image(tmp_path, {"app/acme.conf": f"key {token}\n"})
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "acme.yaml").write_text(
        "rules:\n"
        "  - id: acme.api-key\n"
        "    name: ACME API key\n"
        "    pattern: '\\b(acme_[A-Za-z0-9+=]{24})\\b'\n"
        "    keywords: [acme_]\n"
        "    severity: high\n"
        "    examples: ['acme_Zq3Rt7Lp9Wv2Xy5Kb8Nc4Md6']\n"
        "    negative_examples: ['acme_short']\n"
    )
    (tmp_path / "cfg.yaml").write_text(f"rules:\n  dirs: [{rules}]\n")
    report = scan_json(cli, image, "--config", str(tmp_path / "cfg.yaml"))
    assert [f["rule_id"] for f in report["findings"]] == ["acme.api-key"]


def test_invalid_config_and_match_everything_allowlists_are_rejected(cli, tmp_path: Path) -> None:
    for body in (
        "allowlist:\n  paths: ['*']\n",
        "allowlist:\n  regexes: ['.*']\n",
        "unknown: 1\n",
        "limits:\n  max_nested_depth: 0\n",
        "allowlist: [\n",
    ):
        (tmp_path / "bad.yaml").write_text(body)
        result = cli("scan", DEMO, "--config", tmp_path / "bad.yaml", "--quiet")
        assert result.code == 2 and result.err.startswith("secretscan: error:"), body


def test_a_rule_without_negative_examples_is_an_error(cli, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "x.yaml").write_text(
        "rules:\n  - id: x.y\n    name: X\n    pattern: '(x{3})'\n    keywords: [x]\n"
        "    severity: low\n    examples: ['xxx']\n"
    )
    result = cli("scan", DEMO, "--rules", rules, "--quiet")
    assert result.code == 2 and "negative example" in result.err


def test_known_test_keys_are_informational_not_findings(cli, tmp_path: Path) -> None:
    from secretscan.detect.knownkeys import known_key_fingerprint

    published = secretgen.rsa_private_key_pem()
    image = _image(
        tmp_path,
        {
            "usr/lib/python3/site-packages/lib/tests/test_rsa.key": published,
            "app/real.key": secretgen.rsa_private_key_pem(),
        },
    )
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "known-test-keys.yaml").write_text(
        "version: 1\nkeys:\n"
        f"  - fingerprint: '{known_key_fingerprint(published)}'\n    kind: rsa-private-key\n"
        "    source: a library's published test key\n    where: lib/tests/test_rsa.key\n"
    )
    result = cli("scan", image, "--rules", rules, "--format", "json", "--quiet")
    report = result.report
    assert [f["locations"][0]["path"] for f in report["findings"]] == ["/app/real.key"]
    assert [k["locations"][0]["path"] for k in report["known_test_keys"]] == [
        "/usr/lib/python3/site-packages/lib/tests/test_rsa.key"
    ]
    text = cli("scan", image, "--rules", rules, "--quiet").out
    assert "Published test keys and package content (informational, 1)" in text

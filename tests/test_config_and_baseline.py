"""secretscan.yaml (extra rules, allowlists, limits) and baselines."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
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


def _rule_dir(tmp_path: Path, extra: str) -> Path:
    """A rule directory of one rule ``x.y`` (``(x{3})``), with ``extra`` YAML lines of it."""
    rules = tmp_path / "rules"
    rules.mkdir()
    base = "rules:\n  - id: x.y\n    name: X\n    pattern: '(x{3})'\n    keywords: [x]\n    severity: low\n"
    (rules / "x.yaml").write_text(base + extra)
    return rules


def test_a_rule_without_negative_examples_is_an_error(cli, tmp_path: Path) -> None:
    rules = _rule_dir(tmp_path, "    examples: ['xxx']\n")
    result = cli("scan", DEMO, "--rules", rules, "--quiet")
    assert result.code == 2 and "negative example" in result.err


def test_a_rule_naming_a_verifier_that_does_not_exist_is_an_error(cli, tmp_path: Path) -> None:
    rules = _rule_dir(tmp_path, "    verifier: acme\n    examples: ['xxx']\n    negative_examples: ['yyy']\n")
    for command in (("scan", DEMO, "--rules", rules, "--quiet"), ("rules", "check", "--rules", rules)):
        result = cli(*command)
        assert result.code == 2 and "unknown verifier 'acme'" in result.err and "github" in result.err, result.err
        assert len(result.err.strip().splitlines()) == 1


def test_which_rules_search_package_content_is_read_from_the_regex_or_said_in_yaml(cli, tmp_path: Path) -> None:
    """A rule whose secret always starts with a literal of 3+ case-sensitive characters is
    self-identifying (searches package content by default); ``self_identifying`` in its YAML says
    otherwise either way; a value that is not a boolean is a one-line error."""

    def rule(rule_id: str, pattern: str, extra: str = "") -> str:
        return (
            f"  - id: {rule_id}\n    name: R\n    pattern: '{pattern}'\n    keywords: [zz]\n    severity: low\n"
            f"    examples: ['zzq_0123456789']\n    negative_examples: ['nothing']\n{extra}"
        )

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "own.yaml").write_text(
        "rules:\n"
        + rule("own.prefixed", "(zzq_[0-9]{10})")
        + rule("own.prefixed-alternatives", "((?:zzq_|zzr_)[0-9]{10})")
        + rule("own.short-prefix", "(zz[q-r]_[0-9]{10})")
        + rule("own.caseless", "(?i)(zzq_[0-9]{10})")
        + rule("own.named", "zz_key=(zzq_[0-9]{10})", "    self_identifying: true\n")
        + rule("own.opted-out", "(zzq_[0-9]{10})", "    self_identifying: false\n")
    )
    listed = cli("rules", "list", "--self-identifying", "--rules", rules)
    assert listed.code == 0, listed.err
    own = {line.split()[0] for line in listed.out.splitlines() if line.startswith("own.")}
    assert own == {"own.prefixed", "own.prefixed-alternatives", "own.named"}
    everything = {line.split()[0] for line in cli("rules", "list", "--rules", rules).out.splitlines()}
    assert own < everything and "generic.secret-assignment" in everything and "github.personal-access-token" in listed.out
    assert "generic.secret-assignment" not in listed.out  # a name = value guess never searches package content
    (rules / "own.yaml").write_text("rules:\n" + rule("own.bad", "(zzq_[0-9]{10})", "    self_identifying: yes please\n"))
    refused = cli("rules", "check", "--rules", rules)
    assert refused.code == 2 and refused.err.count("\n") == 1, refused.err
    assert "own.bad" in refused.err and "self_identifying must be true or false" in refused.err


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


_NUMBER = "expected a whole number, optionally with a unit (K/KiB, M/MiB, G/GiB, T/TiB)"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "limits:\n  max_nested_depth: lots\n",
            f"secretscan.yaml:2:21: limits.max_nested_depth: {_NUMBER}, not 'lots'",
        ),
        ("limits:\n  max_nested_depth: 2.5\n", f"secretscan.yaml:2:21: limits.max_nested_depth: {_NUMBER}, not 2.5"),
        ("limits:\n  max_layer_bytes: 8GB\n", f"secretscan.yaml:2:20: limits.max_layer_bytes: {_NUMBER}, not '8GB'"),
        ("limits:\n  max_nested_depth: 0\n", "secretscan.yaml:2:21: limits.max_nested_depth: must be positive, not 0"),
        (
            "limits:\n  max_nested_dept: 2\n",
            "secretscan.yaml:2:3: limits: unknown key 'max_nested_dept' (did you mean 'max_nested_depth'?)",
        ),
        (
            "allowlist:\n  pathz: ['/docs/*']\n",
            "secretscan.yaml:2:3: allowlist: unknown key 'pathz' (did you mean 'paths'?)",
        ),
        ("limitz: {}\n", "secretscan.yaml:1:1: unknown key 'limitz' (did you mean 'limits'?)"),
        (
            "colour: red\n",
            "secretscan.yaml:1:1: unknown key 'colour' (known: allowlist, fingerprint_key, limits, rules, search_packages, vault, verify)",
        ),
        ("rules:\n  dir: [x]\n", "secretscan.yaml:2:3: rules: unknown key 'dir' (did you mean 'dirs'?)"),
        (
            "vault:\n  auth: aprole\n",
            "secretscan.yaml:2:9: vault.auth: unknown value 'aprole' (did you mean 'approle'?)",
        ),
        (
            "vault:\n  kv: [secret/app, '/']\n",
            "secretscan.yaml:2:20: vault.kv[1]: expected MOUNT or MOUNT/PREFIX, not '/'",
        ),
        (
            "verify:\n  providers: [githb]\n",
            "secretscan.yaml:2:15: verify.providers[0]: unknown value 'githb' (did you mean 'github'?)",
        ),
        (
            "verify:\n  endpoints: {gitlb: 'https://gl.example'}\n",
            "secretscan.yaml:2:15: verify.endpoints: unknown key 'gitlb' (did you mean 'gitlab'?)",
        ),
        (
            "verify:\n  rate_per_second: fast\n",
            "secretscan.yaml:2:20: verify.rate_per_second: expected a number, not 'fast'",
        ),
        (
            "allowlist:\n  paths: '*'\n",
            "secretscan.yaml:2:10: allowlist.paths[0]: '*' matches every path: it would hide every finding",
        ),
        (
            "allowlist:\n  regexes: ['.']\n",
            "secretscan.yaml:2:13: allowlist.regexes[0]: '.' matches every value: it would hide every finding",
        ),
        (
            "allowlist:\n  rules: [123]\n",
            "secretscan.yaml:2:11: allowlist.rules[0]: expected a string, not 123 (quote it)",
        ),
        (
            "limits:\n  max_nested_depth: 3\n  max_nested_depth: 4\n",
            "secretscan.yaml:3:3: limits: key 'max_nested_depth' written twice (first at 2:3)",
        ),
        ("- limits\n", "secretscan.yaml:1:1: expected a mapping, not a list"),
        (
            "allowlist: [\n",
            "secretscan.yaml:2:1: not valid YAML: expected the node content, but found '<stream end>' (while parsing a flow node)",
        ),
        (
            "allowlist:\n  paths: ['/docs/*'\nlimits: {}\n",
            "secretscan.yaml:3:1: not valid YAML: expected ',' or ']', but got '<scalar>' "
            "(while parsing a flow sequence at 2:10)",
        ),
        ("rules:\n  dirs: [my-rules]\n", "secretscan.yaml:2:10: rules.dirs[0]: no such directory: {cwd}/my-rules"),
        (
            "search_packages: yes please\n",
            "secretscan.yaml:1:18: search_packages: expected true or false, not 'yes please'",
        ),
    ],
    ids=lambda v: "" if v.startswith("secretscan.yaml") else " ".join(v.split())[:40],
)
def test_a_config_mistake_is_one_line_naming_file_line_key_and_value(
    cli, tmp_path: Path, body: str, message: str
) -> None:
    """Every bad value or key, at any level, is exit 2 and one line that points at it — never
    silently ignored, never an internal error."""
    (tmp_path / "secretscan.yaml").write_text(body)
    result = cli("scan", DEMO, "--quiet")
    expected = message.replace("{cwd}", str(tmp_path))
    assert (result.code, result.err, result.out) == (2, f"secretscan: error: {expected}\n", "")


def test_a_bad_fingerprint_key_is_named_but_never_quoted(cli, tmp_path: Path) -> None:
    key = secrets.token_urlsafe(24)
    (tmp_path / "secretscan.yaml").write_text(f"fingerprint_key: [{key}]\n")
    result = cli("scan", DEMO, "--quiet")
    assert result.code == 2
    assert result.err == "secretscan: error: secretscan.yaml:1:18: fingerprint_key: expected a string, not a list\n"
    assert key not in result.err


def test_limits_take_the_same_units_in_the_config_as_on_the_command_line(cli, tmp_path: Path) -> None:
    image = _image(tmp_path, {"big.txt": "x" * 5000, "t.txt": f"{secretgen.github_pat()}\n"})
    (tmp_path / "cfg.yaml").write_text("limits:\n  max_layer_bytes: 2KiB\n")
    from_file = scan_json(cli, image, "--config", str(tmp_path / "cfg.yaml"))
    from_flag = scan_json(cli, image, "--limit", "max_layer_bytes=2KiB")
    assert from_file["skipped"] == from_flag["skipped"]
    assert from_file["skipped"] and "max_layer_bytes" in from_file["skipped"][0]["reason"]
    (tmp_path / "cfg.yaml").write_text("limits:\n  max_layer_bytes: 8GiB\n  max_nested_bytes: 512M\n")
    assert scan_json(cli, image, "--config", str(tmp_path / "cfg.yaml"))["complete"]


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("max_nested_depth=lots", f"--limit 'max_nested_depth=lots': {_NUMBER}, not 'lots'"),
        (
            "max_nested_dept=2",
            "--limit 'max_nested_dept=2': unknown limit 'max_nested_dept' (did you mean 'max_nested_depth'?)",
        ),
        ("max_nested_depth", "--limit 'max_nested_depth': expected NAME=VALUE, e.g. max_layer_bytes=8GiB"),
    ],
)
def test_a_bad_limit_flag_is_one_line(cli, flag: str, message: str) -> None:
    result = cli("scan", DEMO, "--quiet", "--limit", flag)
    assert (result.code, result.err) == (2, f"secretscan: error: {message}\n")


def test_the_readme_config_example_is_a_valid_config(tmp_path: Path) -> None:
    from secretscan.config import load_config

    readme = (REPO / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "my-rules").mkdir()
    (tmp_path / "secretscan.yaml").write_text(example)
    config = load_config(tmp_path / "secretscan.yaml", required=True)
    assert config.limits.max_layer_bytes == 32 * 1024**3 and config.limits.max_nested_bytes == 256 * 1024**2
    assert config.rule_dirs == ((tmp_path / "my-rules").resolve(),)

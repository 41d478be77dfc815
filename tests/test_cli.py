"""Exit codes and bad input, as a CI gate sees them."""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import platform
import random
import re
import socket
import string
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import secretgen
from conftest import REPO, own_rule_dir
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive, write_oci_layout

DEMO = REPO / "fixtures" / "demo-image.tar"


def _image(tmp_path: Path, *layers: Layer, name: str = "img.tar") -> Path:
    path = tmp_path / name
    write_docker_archive(path, [ImageSpec(steps=list(layers), repo_tags=["t/app:1"])])
    return path


def test_exit_0_when_clean(cli, tmp_path: Path) -> None:
    image = _image(tmp_path, Layer([Entry("app/main.py", b"print('hello')\n")]))
    result = cli("scan", image, "--quiet")
    assert result.code == 0 and "No secrets found." in result.out


def test_exit_1_on_findings_and_fail_on_threshold(cli, tmp_path: Path) -> None:
    image = _image(
        tmp_path, Layer([Entry("app/.npmrc", f"//registry.npmjs.org/:_authToken={secretgen.npm_token()}\n".encode())])
    )
    assert cli("scan", image, "--quiet").code == 1
    report = cli("scan", image, "--format", "json", "--quiet").report
    severities = {f["severity"] for f in report["findings"]}
    order = ["info", "low", "medium", "high", "critical"]
    top = max(severities, key=order.index)
    above = order[order.index(top) + 1] if top != "critical" else None
    assert cli("scan", image, "--fail-on", top, "--quiet").code == 1
    if above:
        assert cli("scan", image, "--fail-on", above, "--quiet").code == 0
    assert cli("scan", image, "--fail-on", "none", "--quiet").code == 0


def test_exit_3_only_with_fail_on_incomplete(cli, tmp_path: Path) -> None:
    deep = b"plain"
    for _ in range(3):
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
            gz.write(deep)
        deep = buf.getvalue()
    image = _image(tmp_path, Layer([Entry("data.gz", deep)]))
    (tmp_path / "cfg.yaml").write_text("limits:\n  max_nested_depth: 1\n")
    assert cli("scan", image, "--config", tmp_path / "cfg.yaml", "--quiet").code == 0
    assert cli("scan", image, "--config", tmp_path / "cfg.yaml", "--fail-on-incomplete", "--quiet").code == 3


@pytest.mark.parametrize("bad", ["missing", "not-an-image", "empty-tar"])
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path: Path, bad: str) -> None:
    path = tmp_path / "input"
    if bad == "not-an-image":
        path.write_bytes(b"this is not an image\n" * 10)
    elif bad == "empty-tar":
        with tarfile.open(path, "w") as tar:
            tar.addfile(tarfile.TarInfo("hello.txt"), io.BytesIO(b""))
    result = cli("scan", path, "--quiet")
    assert result.code == 2
    lines = [ln for ln in result.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("secretscan: error:"), result.err
    assert "Traceback" not in result.err and result.out == ""


def test_missing_blob_is_exit_2_and_keeps_the_other_layers_findings(cli, tmp_path: Path) -> None:
    layout = tmp_path / "oci"
    token = secretgen.github_pat()
    write_oci_layout(
        layout, [ImageSpec(steps=[Layer([Entry("a.txt", f"{token}\n".encode())]), Layer([Entry("b.txt", b"b")])])]
    )
    manifest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"].split(":")[1]
    layer_digest = json.loads((layout / "blobs/sha256" / manifest).read_text())["layers"][1]["digest"].split(":")[1]
    (layout / "blobs/sha256" / layer_digest).unlink()
    result = cli("scan", f"oci:{layout}", "--quiet", "--format", "json")
    assert result.code == 2 and "missing blob" in result.err and len(result.err.strip().splitlines()) == 1
    assert [f["locations"][0]["path"] for f in result.report["findings"]] == ["/a.txt"]
    assert not result.report["complete"]


def test_truncated_layer_keeps_findings_from_the_rest_and_exits_2(cli, tmp_path: Path) -> None:
    token = secretgen.github_pat()
    filler = secretgen.password().encode() * 20000
    image = _image(
        tmp_path,
        Layer([Entry("app/token.txt", f"token: {token}\n".encode())], compression="gzip"),
        Layer([Entry("big.bin", filler)]),
    )
    with tarfile.open(image) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    manifest = json.loads(members["manifest.json"])
    last = manifest[0]["Layers"][-1]
    members[last] = members[last][: len(members[last]) // 2]
    broken = tmp_path / "broken.tar"
    with tarfile.open(broken, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    result = cli("scan", broken, "--format", "json", "--quiet")
    assert result.code == 2
    report = result.report
    assert any(f["locations"][0]["path"] == "/app/token.txt" for f in report["findings"])
    assert report["errors"] and "layer 1" in report["errors"][0] and not report["complete"]
    assert "secretscan: error:" in result.err


def test_truncated_gzip_layer_in_oci_layout(cli, tmp_path: Path) -> None:
    layout = tmp_path / "oci"
    write_oci_layout(
        layout,
        [ImageSpec(steps=[Layer([Entry("big.txt", secretgen.password().encode() * 50000)], compression="gzip")])],
    )
    index = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"].split(":")[1]
    layer = json.loads((layout / "blobs/sha256" / index).read_text())["layers"][0]["digest"].split(":")[1]
    blob = layout / "blobs/sha256" / layer
    blob.write_bytes(blob.read_bytes()[:-100])
    result = cli("scan", f"oci:{layout}", "--quiet")
    assert result.code == 2
    assert "unreadable layer" in result.err or "does not match its digest" in result.err


def test_a_small_gzip_layer_whose_trailer_check_fails_keeps_the_files_before_it(cli, tmp_path: Path) -> None:
    """A gzip layer's CRC and size come at its end. One that does not check out (damage, or a
    hostile image) is reported, and the files decoded before it are still scanned: a layer of a
    few KiB is read in one piece, which the failing check used to lose whole."""
    token = secretgen.github_pat()
    layout = tmp_path / "oci"
    files = [Entry("app/settings.py", f'TOKEN = "{token}"\n'.encode()), Entry("app/data.bin", bytes(4096))]
    write_oci_layout(layout, [ImageSpec(steps=[Layer(files, compression="gzip")])])
    index = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"].split(":")[1]
    layer = json.loads((layout / "blobs/sha256" / index).read_text())["layers"][0]["digest"].split(":")[1]
    blob = layout / "blobs/sha256" / layer
    data = bytearray(blob.read_bytes())
    assert len(data) < 4096  # one piece
    data[-8] ^= 0xFF  # the CRC
    blob.write_bytes(bytes(data))
    result = cli("scan", f"oci:{layout}", "-f", "json", "--quiet", "--fail-on", "none")
    assert result.code == 2 and "does not match its digest" in result.err
    assert [loc["path"] for f in result.report["findings"] for loc in f["locations"]] == ["/app/settings.py"]


def test_tampered_layer_fails_digest_check(cli, tmp_path: Path) -> None:
    layout = tmp_path / "oci"
    write_oci_layout(layout, [ImageSpec(steps=[Layer([Entry("a.txt", b"original\n")], compression="none")])])
    index = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"].split(":")[1]
    layer = json.loads((layout / "blobs/sha256" / index).read_text())["layers"][0]["digest"].split(":")[1]
    blob = layout / "blobs/sha256" / layer
    blob.write_bytes(blob.read_bytes().replace(b"original", b"tampered"))
    result = cli("scan", f"oci:{layout}", "--quiet")
    assert result.code == 2 and "does not match its digest" in result.err


def test_unknown_severity_and_unknown_transport_are_usage_errors(cli) -> None:
    assert cli("scan", DEMO, "--fail-on", "severe").code == 2
    result = cli("scan", "./nosuch.tar")
    assert result.code == 2 and "no such file" in result.err
    result = cli("scan", "Not An Image!")
    assert result.code == 2 and "neither a file nor an image name" in result.err


def test_rules_check_passes_on_the_shipped_pack(cli) -> None:
    result = cli("rules", "check")
    assert result.code == 0, result.out
    assert "0 problems" in result.out


def test_rules_check_refuses_a_catastrophically_backtracking_regex(cli, tmp_path: Path) -> None:
    """A hostile file could feed such a regex the input that stalls it for hours: the rule pack
    check catches the regex before it ships."""
    rules = tmp_path / "rules"
    rules.mkdir()
    rule = {
        "id": "test.redos",
        "name": "A regex with nested quantifiers",
        "pattern": "token=((?:[a-z]+)+)!",
        "keywords": ["token="],
        "severity": "low",
        "examples": ["token=" + "".join(random.choices(string.ascii_lowercase, k=14)) + "!"],
        "negative_examples": ["token=b"],
    }
    (rules / "redos.yaml").write_text(json.dumps({"rules": [rule]}))  # JSON is YAML
    result = cli("rules", "check", "--rules", rules)
    assert result.code == 2
    assert "test.redos" in result.out and "backtracks catastrophically" in result.out


def _counts(report: dict) -> str:
    """``4 critical, 5 high, 1 medium`` from a JSON report, highest first."""
    order = ["critical", "high", "medium", "low", "info"]
    found = [f["severity"] for f in report["findings"]]
    return ", ".join(f"{found.count(level)} {level}" for level in order if level in found)


@pytest.mark.parametrize(
    ("name", "fmt", "looks_like"),
    [
        ("r.json", "json", '"schema_version": 1'),
        ("r.sarif", "sarif", '"version": "2.1.0"'),
        ("r.sarif.json", "sarif", '"version": "2.1.0"'),
        ("r.html", "html", "<!doctype html>"),
        ("r.xml", "junit", "<testsuites"),
        ("gl-secret-detection-report.json", "gitlab-secret-detection", '"vulnerabilities"'),
        ("r.txt", "text", "Scanned secretscan/demo:1.0"),
    ],
)
def test_output_format_follows_the_file_name_and_a_summary_line_goes_to_stderr(
    cli, tmp_path: Path, name: str, fmt: str, looks_like: str
) -> None:
    full = cli("scan", DEMO, "-f", "json", "-q").report
    result = cli("scan", DEMO, "-o", name)
    assert result.code == 1 and result.out == ""
    assert looks_like in (tmp_path / name).read_text()
    n = len(full["findings"])
    assert result.err == f"secretscan: {n} findings ({_counts(full)}); report written to {name} ({fmt})\n"
    assert cli("scan", DEMO, "-o", name, "-q").err == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-f", "json", "-o", "r.html"],
            "r.html: --format json does not fit a .html file (html does): rename the file or change the format",
        ),
        (
            ["--also", "html=r.json"],
            "r.json: --also html does not fit a .json file (json, sarif or gitlab-secret-detection do): "
            "rename the file or change the format",
        ),
        (
            ["-f", "text", "-o", "r.sarif"],
            "r.sarif: --format text does not fit a .sarif file (sarif does): rename the file or change the format",
        ),
        (
            ["--severity", "hgh"],
            "--severity: unknown severity 'hgh' (expected one of: info, low, medium, high, critical)",
        ),
        (["-o", "nodir/r.json"], "nodir/r.json: directory nodir does not exist"),
    ],
)
def test_a_report_that_cannot_be_right_is_refused_before_the_scan(
    cli, tmp_path: Path, args: list[str], message: str
) -> None:
    """The image does not exist: the error is about the output, so nothing else was tried first."""
    result = cli("scan", "missing.tar", *args)
    assert (result.code, result.err, result.out) == (2, f"secretscan: error: {message}\n", "")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_explicit_format_wins_over_a_neutral_extension(cli, tmp_path: Path) -> None:
    assert cli("scan", DEMO, "-f", "sarif", "-o", "results.json", "-q").code == 1
    assert json.loads((tmp_path / "results.json").read_text())["version"] == "2.1.0"
    assert cli("scan", DEMO, "-f", "json", "-o", "report.log", "-q").code == 1
    assert json.loads((tmp_path / "report.log").read_text())["schema_version"] == 1


def test_severity_filters_the_report_but_not_the_exit_code(cli) -> None:
    full = cli("scan", DEMO, "-f", "json", "-q").report
    levels = {f["severity"] for f in full["findings"]}
    assert {"critical", "medium"} <= levels, "the demo image has critical and medium findings"
    hidden = sum(1 for f in full["findings"] if f["severity"] != "medium")
    shown = cli("scan", DEMO, "-f", "json", "--severity", "medium", "--fail-on", "critical")
    assert {f["severity"] for f in shown.report["findings"]} == {"medium"}
    assert shown.code == 1, "the critical findings it hides still fail --fail-on critical"
    assert shown.err == (
        f"secretscan: {hidden} finding(s) not shown (--severity medium); they still count for --fail-on\n"
    )
    both = cli("scan", DEMO, "-f", "json", "--severity", "HIGH,critical", "-q")
    assert {f["severity"] for f in both.report["findings"]} == levels & {"high", "critical"}
    assert both.err == ""


def test_severity_applies_to_also_files_and_the_summary_counts_the_rest(cli, tmp_path: Path) -> None:
    full = cli("scan", DEMO, "-f", "json", "-q").report
    critical = sum(1 for f in full["findings"] if f["severity"] == "critical")
    rest = len(full["findings"]) - critical
    result = cli("scan", DEMO, "-o", "r.json", "--also", "junit=r.xml", "--severity", "critical")
    assert {f["severity"] for f in json.loads((tmp_path / "r.json").read_text())["findings"]} == {"critical"}
    assert (tmp_path / "r.xml").read_text().count("<failure") >= critical
    assert result.err == (
        f"secretscan: {len(full['findings'])} findings ({critical} critical), {rest} not shown (--severity; "
        "they count for --fail-on); report written to r.json (json), r.xml (junit)\n"
    )


def test_no_progress_hides_the_bar_but_keeps_the_summary(tmp_path: Path) -> None:
    from test_progress import _run_with_tty_stderr

    out = tmp_path / "r.json"
    shown = _run_with_tty_stderr("--no-progress", "-o", str(out))
    assert "layers)" not in shown and "layer 1/" not in shown
    assert shown.startswith("secretscan: ") and f"report written to {out} (json)" in shown
    assert len(shown.strip().splitlines()) == 1


def _scan_in_fresh_process(
    tmp_path: Path, *args: str | Path, cache_env: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``secretscan scan DEMO ARGS`` as a CI runner runs it: a new process, HOME and XDG_CACHE_HOME
    empty directories of their own, SECRETSCAN_CACHE_DIR only if ``cache_env`` is given."""
    env = {**os.environ, "HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    env.pop("SECRETSCAN_CACHE_DIR", None)
    if cache_env is not None:
        env["SECRETSCAN_CACHE_DIR"] = str(cache_env)
    command = [sys.executable, "-m", "secretscan", "scan", str(DEMO), "--no-progress", *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)


COMPILING = "secretscan: compiling the rule database"


def test_first_scan_with_an_empty_cache_compiles_nothing(tmp_path: Path) -> None:
    """The cold start a CI runner pays: with the built-in rules, the compiled database and the
    rule-example memo ship with secretscan (`make install` writes them into a checkout, the wheel
    build into the package), so a first scan with an empty cache directory compiles nothing and
    writes nothing."""
    pytest.importorskip("hyperscan", reason="the compiled database exists only with Hyperscan")
    shipped = REPO / "secretscan" / "data" / "prebuilt"
    assert list(shipped.glob("hyperscan-*.db")), "no shipped database: `make install` writes it"
    cache = tmp_path / "ci-cache"
    first = _scan_in_fresh_process(tmp_path, "--cache-dir", cache, "-f", "json")
    assert first.returncode == 1, first.stderr
    assert COMPILING not in first.stderr
    assert not cache.exists() or not any(cache.iterdir())
    assert not (tmp_path / "home").exists() and not (tmp_path / "xdg").exists()
    assert len(json.loads(first.stdout)["findings"]) == 10


def test_a_compile_is_announced_and_kept_in_the_cache_dir(cli, tmp_path: Path) -> None:
    """The user's own rules make a rule set nothing shipped was built for: the first scan says on
    stderr that it compiles and keeps the result in --cache-dir (and nowhere else); the next one
    loads it silently."""
    pytest.importorskip("hyperscan", reason="the compiled database exists only with Hyperscan")
    rules = own_rule_dir(tmp_path)
    cache = tmp_path / "ci-cache"
    first = _scan_in_fresh_process(tmp_path, "--cache-dir", cache, "--rules", rules)
    assert first.returncode == 1, first.stderr
    announced = [line for line in first.stderr.splitlines() if line.startswith(COMPILING)]
    assert announced == [f"{COMPILING} for this rule set (seconds, once; kept in {cache})"]
    assert {p.name.split("-")[0] for p in cache.iterdir()} == {"hyperscan", "published", "scope"}
    assert not (tmp_path / "home").exists() and not (tmp_path / "xdg").exists()
    again = _scan_in_fresh_process(tmp_path, "--cache-dir", cache, "--rules", rules)
    assert again.returncode == 1 and COMPILING not in again.stderr
    quiet = _scan_in_fresh_process(tmp_path, "--rules", rules, "-q", cache_env=tmp_path / "env-cache")
    assert quiet.returncode == 1 and quiet.stderr == ""
    assert {p.name.split("-")[0] for p in (tmp_path / "env-cache").iterdir()} == {"hyperscan", "published", "scope"}
    (tmp_path / "afile").write_text("x")
    result = cli("scan", DEMO, "-q", "--cache-dir", "afile")
    assert (result.code, result.err) == (2, "secretscan: error: cache directory afile: not a directory\n")


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("docker-archve:app.tar", "unknown transport 'docker-archve' (did you mean docker-archive?)"),
        ("oci-archiv:app.tar", "unknown transport 'oci-archiv' (did you mean oci-archive?)"),
        ("dokcer://ghcr.io/acme/app:1", "unknown transport 'dokcer' (did you mean docker?)"),
        (
            "https://ghcr.io/acme/app:1",
            "unknown transport 'https' (known: dir:, docker:, docker-archive:, docker-daemon:, oci:, oci-archive:; "
            "a registry image is docker://HOST/REPO:TAG)",
        ),
    ],
)
def test_a_mistyped_transport_is_named_and_nothing_is_looked_up(
    cli, monkeypatch: pytest.MonkeyPatch, image: str, message: str
) -> None:
    looked_up: list[object] = []
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: looked_up.append(host) or real(host, *a, **k))
    result = cli("scan", image)
    assert (result.code, result.err) == (2, f"secretscan: error: {message}\n")
    assert looked_up == []


def test_an_unresolvable_registry_is_one_line_and_not_retried(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """The resolver answers "no such name" (tests reach no real DNS server); the scan asks once and
    says so, without a round of back-offs or urllib3's text."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == "registry.invalid":
            asked.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    result = cli("scan", "docker://registry.invalid/team/app:1", "-q")
    assert (result.code, result.err) == (
        2,
        "secretscan: error: registry.invalid/team/app: cannot resolve registry.invalid (Name or service not known)\n",
    )
    assert asked == ["registry.invalid"]


def test_version_names_the_tool_rules_hyperscan_and_python(cli) -> None:
    from importlib.metadata import version

    text = cli("version")
    assert text.code == 0
    lines = text.out.splitlines()
    assert lines[0] == f"secretscan {version('secretscan')}"
    doc = cli("version", "--json").report
    scanned = cli("scan", DEMO, "-f", "json", "-q").report
    listed = cli("rules", "list").out.splitlines()
    assert doc["rules"] == len(listed) and f"rules:     {len(listed)} ({doc['rules_digest']})" in lines
    assert doc["rules_digest"] == scanned["tool"]["rules_digest"]
    assert doc["python"].startswith(platform.python_version())
    try:
        hyperscan_package = version("hyperscan")
    except Exception:  # noqa: BLE001 - not installed: the line says so
        assert doc["hyperscan"] is None and any(ln.startswith("hyperscan: not installed") for ln in lines)
    else:
        assert doc["python_hyperscan"] == hyperscan_package and re.fullmatch(r"\d+\.\d+\.\d+", doc["hyperscan"])
        assert f"hyperscan: {doc['hyperscan']} (python-hyperscan {hyperscan_package})" in lines


def test_readme_usage_lists_every_subcommand_and_format() -> None:
    from secretscan.cli import build_parser
    from secretscan.report import OutputFormat

    readme = (REPO / "README.md").read_text()
    usage = re.search(r"^## Usage\n+```sh\n(.*?)^```", readme, re.M | re.S)
    assert usage, "README.md has a Usage section with a sh block"
    block = usage.group(1)
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    missing = [c for c in commands if not re.search(rf"^secretscan {re.escape(c)}\b", block, re.M)]
    missing += [f.value for f in OutputFormat if not re.search(rf"\b{re.escape(f.value)}\b", block)]
    assert not missing, f"README.md's usage block does not mention {missing}"


def test_migration_plan_format_follows_the_file_name(cli, tmp_path: Path) -> None:
    assert cli("migrate", "plan", DEMO, "-o", "plan.json", "-q").code == 0
    assert json.loads((tmp_path / "plan.json").read_text())["schema_version"] == 1
    assert cli("migrate", "plan", DEMO, "-o", "plan.md", "-q").code == 0
    assert (tmp_path / "plan.md").read_text().startswith("# Migration plan for ")

"""Secrets seen only in installed packages' docs, examples and tests (patterns/third-party.yaml)
are listed with the published test keys; the same value anywhere else stays a finding."""

from __future__ import annotations

from pathlib import Path

import pytest
import secretgen
from conftest import REPO, fingerprint_of
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive

from secretscan.detect.thirdparty import ThirdPartyPaths

PATHS = ThirdPartyPaths.load([REPO / "patterns"])


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/usr/local/lib/python3.11/site-packages/awscli/examples/ecr/get-login.rst", "awscli"),
        ("/usr/lib/python3/dist-packages/botocore/data/README.md", "botocore"),
        ("/app/node_modules/axios/README.md", "axios"),
        ("/app/node_modules/@aws-sdk/client-s3/dist-types/test/fixtures.json", "@aws-sdk/client-s3"),
        ("/app/node_modules/a/node_modules/url/test.js", "url"),
        ("/usr/local/lib/python3.11/site-packages/tornado/test/__pycache__/auth_test.cpython-311.pyc", "tornado"),
        ("/usr/share/doc/gnutls-bin/examples/key.pem", None),  # only where dpkg vouches for it
        ("/usr/local/bundle/gems/aws-sdk-core-3.190.0/README.md", "aws-sdk-core-3.190.0"),
        ("/app/libs/vendor.jar!/META-INF/maven/x/README.md", None),
        ("/app/config/.env", None),
        ("/app/tests/fixtures/deploy.pem", None),  # the application's own tests are its own
        ("/app/README.md", None),
        ("/usr/local/lib/python3.11/site-packages/myapp/settings.py", None),  # an app installed as a package
        ("/app/node_modules/.env", None),
        ("config.Env[2]", None),
    ],
)
def test_which_paths_are_published_with_a_package(path: str, why: str | None) -> None:
    reason = PATHS.describe(path)
    if why is None:
        assert reason is None, reason
    else:
        assert reason is not None and why in reason


def _image(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    path = tmp_path / f"{name}.tar"
    write_docker_archive(path, ImageSpec([Layer([Entry(p, text.encode()) for p, text in files.items()])]))
    return path


def test_a_key_only_in_package_docs_is_published_and_does_not_fail(cli, tmp_path: Path) -> None:
    key = secretgen.aws_access_key_id()
    docs = "usr/local/lib/python3.11/site-packages/awscli/examples/ecr/get-download-url-for-layer.rst"
    image = _image(tmp_path, "docs", {docs: f"Output::\n\n    AccessKeyId: {key}\n"})
    result = cli("scan", image, "-f", "json", "-q", "--fail-on", "high")
    assert result.code == 0, result.err
    assert result.report["findings"] == []
    (known,) = result.report["known_test_keys"]
    assert known["fingerprint"] == fingerprint_of(key) and "awscli" in known["source"]


def test_the_same_key_in_the_application_stays_a_finding_with_every_location(cli, tmp_path: Path) -> None:
    key = secretgen.aws_access_key_id()
    docs = "usr/local/lib/python3.11/site-packages/awscli/examples/ecr/get-download-url-for-layer.rst"
    image = _image(tmp_path, "both", {docs: f"AccessKeyId: {key}\n", "app/.env": f"AWS_ACCESS_KEY_ID={key}\n"})
    result = cli("scan", image, "-f", "json", "-q", "--fail-on", "high")
    assert result.code == 1
    (finding,) = [f for f in result.report["findings"] if f["fingerprint"] == fingerprint_of(key)]
    assert {loc["path"] for loc in finding["locations"]} == {"/" + docs, "/app/.env"}
    assert result.report["known_test_keys"] == []


def test_a_rule_directory_can_add_package_roots(cli, tmp_path: Path) -> None:
    token = secretgen.github_pat()
    image = _image(tmp_path, "vendored", {"opt/vendor-libs/acme/docs/setup.md": f"token: {token}\n"})
    assert cli("scan", image, "-q", "--fail-on", "high").code == 1
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "third-party.yaml").write_text("version: 1\npackage_roots: [opt/vendor-libs/]\n")
    result = cli("scan", image, "-f", "json", "-q", "--rules", rules, "--fail-on", "high")
    assert result.code == 0 and "acme" in result.report["known_test_keys"][0]["source"]


def test_a_misspelt_list_is_an_error_not_silence(cli, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "third-party.yaml").write_text("version: 1\npackage_root: [opt/vendor-libs/]\n")
    image = _image(tmp_path, "any", {"app/readme.txt": "hello\n"})
    result = cli("scan", image, "-q", "--rules", rules)
    assert result.code == 2 and "third-party.yaml" in result.err and "package_roots" in result.err

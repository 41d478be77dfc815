"""What is and is not a finding in realistic files: real formats found, look-alikes left alone."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import uuid
from pathlib import Path

import secretgen
from conftest import scan_json
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive


def _scan(cli, tmp_path: Path, files: dict[str, str]) -> dict:
    path = tmp_path / "img.tar"
    write_docker_archive(path, [ImageSpec(steps=[Layer([Entry(p, d.encode()) for p, d in files.items()])])])
    return scan_json(cli, path, "--show-secrets")


def test_sts_session_token_with_slash_runs_is_found(cli, tmp_path: Path) -> None:
    # Real STS session tokens are base64 and often hold runs like "//////////".
    token = (
        "IQoJb3JpZ2luX2VjE"
        + base64.b64encode(secrets.token_bytes(150)).decode()[:120]
        + "//////////"
        + base64.b64encode(secrets.token_bytes(60)).decode()
    )
    creds = (
        f"[default]\naws_access_key_id = {secretgen.aws_access_key_id()}\n"
        f"aws_secret_access_key = {secretgen.aws_secret_access_key()}\naws_session_token = {token}\n"
    )
    report = _scan(cli, tmp_path, {"root/.aws/credentials": creds})
    assert token in {f["secret"] for f in report["findings"]}


def test_placeholders_templates_and_references_are_not_findings(cli, tmp_path: Path) -> None:
    files = {
        "app/.env.example": "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\nDB_PASSWORD=changeme\nAPI_KEY=<your api key>\n",
        "app/settings.py": 'import os\nSECRET_KEY = os.environ["SECRET_KEY"]\npassword = get_password()\ntoken = "${TOKEN}"\n',
        "app/values.yaml": "auth:\n  token: '{{ .Values.token }}'\n  password: $DB_PASSWORD\n",
    }
    assert _scan(cli, tmp_path, files)["findings"] == []


def test_lockfile_hashes_uuids_digests_public_keys_are_not_findings(cli, tmp_path: Path) -> None:
    lock = {
        "packages": {
            "node_modules/x": {
                "version": "1.0.0",
                "integrity": "sha512-" + base64.b64encode(secrets.token_bytes(64)).decode(),
            }
        }
    }
    private = secretgen.rsa_private_key_pem().encode()
    public = subprocess.run(
        ["openssl", "pkey", "-pubout"], input=private, capture_output=True, check=True
    ).stdout.decode()
    cert = subprocess.run(
        ["openssl", "req", "-x509", "-new", "-key", "/dev/stdin", "-subj", "/CN=demo", "-days", "1"],
        input=private,
        capture_output=True,
        check=True,
    ).stdout.decode()
    files = {
        "app/package-lock.json": json.dumps(lock, indent=2),
        "app/ids.py": f'request_token = "{uuid.uuid4()}"\nsecret_sha256 = "{secrets.token_hex(32)}"\n',
        "etc/ssl/certs/demo.pem": cert + public,
    }
    assert _scan(cli, tmp_path, files)["findings"] == []


def test_openssh_key_escaped_on_one_line_is_found(cli, tmp_path: Path) -> None:
    key = secretgen.openssh_private_key().strip()
    report = _scan(cli, tmp_path, {"app/deploy.json": json.dumps({"ssh_key": key})})
    assert any(f["rule_id"].startswith("private-key.") for f in report["findings"])


def test_quoted_passwords_are_found_whole_whatever_symbols_they_hold(cli, tmp_path: Path) -> None:
    """A password literal may start with + or hold &: between quotes it is one value. In an
    unquoted URL query & still ends the value, and "…="+x+"…" in code stays a concatenation."""
    ampersand = "&" + secretgen.password()[:9] + "&" + secretgen.password()[:9]
    plus = "+" + secretgen.password()[:18] + "x"  # "+…+" would read as a concatenation
    query_token = secretgen.password().replace("&", "9")
    files = {
        "app/settings.py": f'DEFAULT_PASSWORD = "{ampersand}"\nADMIN_PASSWORD = "{plus}"\n',
        "app/fetch.sh": f"curl https://api.example.internal/v1/items?api_key={query_token}&page=2\n",
        "app/sign.js": 'r.push(this.algorithm+" Credential="+e.accessKeyId+"/"+a)\n',
    }
    report = _scan(cli, tmp_path, files)
    found = {f["secret"] for f in report["findings"]}
    assert {ampersand, plus, query_token} <= found
    assert not any(loc["path"] == "/app/sign.js" for f in report["findings"] for loc in f["locations"])


def test_openbao_tokens_are_vault_tokens_in_a_vault_context_or_their_strict_shape(cli, tmp_path: Path) -> None:
    """OpenBao's s.<24> (s.<24>.<namespace id> in a namespace) and b.AAAAAQ… tokens, as Vault's
    before 1.10: under BAO_/VAULT_ names and in bao/vault commands, and under any other *token
    name when the shape is strict; an s.<identifier> in code or prose is not one."""
    namespace = secretgen.openbao_namespace_id()
    tokens = [secretgen.openbao_token(namespace_id=namespace if n % 2 else None) for n in range(6)]
    batch = secretgen.openbao_batch_token()
    files = {
        "etc/agent.env": f"BAO_ADDR=https://bao.internal:8200\nBAO_TOKEN={tokens[0]}\nOLD_TOKEN={tokens[1]}\n",
        "app/entrypoint.sh": (
            f"bao login {tokens[2]}\nvault login -method=token -no-print {tokens[3]}\n"
            f"bao kv get -token={tokens[4]} secret/app\n"
        ),
        "app/config.yaml": f"vault:\n  token: {tokens[5]}\n  batch_token: {batch}.{namespace}\n",
    }
    found = {f["secret"]: f["rule_id"] for f in _scan(cli, tmp_path, files)["findings"]}
    assert found == {t: "vault.legacy-token" for t in [*tokens, f"{batch}.{namespace}"]}

    identifier = "s.fetchAccessTokenFromPool"  # s. + 24 letters: a member access, not a token
    look_alikes = {
        "app/main.js": f"const token = {identifier};\nexport default token;\n",
        "app/notes.txt": f"see build {secretgen.openbao_token()} for the session log\n",
    }
    assert _scan(cli, tmp_path, look_alikes)["findings"] == []

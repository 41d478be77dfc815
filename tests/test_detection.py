"""What is and is not a finding in realistic files: real formats found, look-alikes left alone."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import uuid
from pathlib import Path

import pytest
import secretgen
from conftest import scan_json
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive

from secretscan.detect.filters import is_heuristic_non_secret, is_placeholder


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


def test_formats_the_rules_were_too_strict_for_are_found(cli, tmp_path: Path) -> None:
    """Issue 17, class 5: provider formats that were missed where images carry them: a bare
    Telegram token, an unprefixed SonarQube token in sonar.login, a Slack refresh token, a UUID
    npm token written into .npmrc by a RUN line, .netrc text in a Dockerfile, Vault unseal keys,
    Rails' secret_key_base, a kubeadm join token, Mailgun and Postmark keys in client code, a
    Facebook app token and a MongoDB Atlas service-account secret."""
    unseal = [secretgen.vault_unseal_key() for _ in range(3)]
    expected = {
        secretgen.telegram_bot_token(): "telegram.bot-token",
        secretgen.nuget_api_key(): "nuget.api-key",
        secretgen.sonarqube_legacy_token(): "sonarqube.token-legacy",
        secretgen.slack_refresh_token(): "slack.configuration-token",
        secretgen.npm_legacy_token(): "npm.legacy-auth-token",
        secretgen.rails_secret_key_base(): "rails.secret-key-base",
        secretgen.kubeadm_token(): "kubernetes.bootstrap-token",
        secretgen.mailgun_api_key(): "mailgun.api-key-v2",
        secretgen.postmark_server_token(): "postmark.server-token",
        secretgen.facebook_app_token(): "facebook.app-access-token",
        secretgen.mongodb_atlas_sa_secret(): "mongodb.atlas-service-account-secret",
        **dict.fromkeys(unseal, "vault.unseal-key"),
    }
    telegram, nuget, sonar, slack, npm, rails, join, mailgun, postmark, facebook, atlas = list(expected)[:11]
    netrc_password = secretgen.password().replace("'", "").replace('"', "")
    expected[netrc_password] = "netrc.inline-credentials"
    files = {
        "app/notify.yaml": f'alerts:\n  chat: -1001704977542\n  bot: "{telegram}"\n',
        "etc/profile.d/ci.sh": f"export NUGET_AUTH={nuget}\nsonar-scanner -Dsonar.login={sonar}\n",
        "app/config/slack.json": json.dumps({"refresh_token": slack}),
        "app/Dockerfile": (
            f'RUN echo "//registry.npmjs.org/:_authToken={npm}" > /root/.npmrc\n'
            f'RUN echo "machine git.acme.io login ci-bot password {netrc_password}" > /root/.netrc\n'
        ),
        "root/vault-init.txt": "".join(f"Unseal Key {n}: {key}\n" for n, key in enumerate(unseal, 1)),
        "app/config/secrets.yml": f"production:\n  secret_key_base: {rails}\n",
        "usr/local/bin/join.sh": f"kubeadm join 10.0.0.1:6443 --token {join} --discovery-token-unsafe-skip-ca-verification\n",
        "app/mail.py": f'requests.post(f"https://api.eu.mailgun.net/v3/{{DOMAIN}}/messages", auth=("api", "{mailgun}"))\n',
        "app/mail.js": f'const client = new postmark.ServerClient("{postmark}");\n',
        "app/fb.conf": f"graph_access_token = {facebook}\n",
        "app/atlas.sh": f"atlas auth login --clientId mdb_sa_id_{secrets.token_hex(12)} --clientSecret {atlas}\n",
    }
    found = {f["secret"]: f["rule_id"] for f in _scan(cli, tmp_path, files)["findings"]}
    assert {secret: found.get(secret) for secret in expected} == expected


def test_placeholders_identifiers_and_fixture_values_are_not_findings(cli, tmp_path: Path) -> None:
    """Issue 17, class 6: bracketed and braced placeholders, the tail of one a value's character
    class let through, tokens made of one repeated character or unit, attribute expressions, ARNs,
    e-mail addresses, dictionary-word test passwords and a Slack webhook URL cut short."""
    cut_webhook = f"https://hooks.slack.com/services/T{secrets.token_hex(5).upper()}/B{secrets.token_hex(5).upper()}/"
    files = {
        "app/.env": (
            "DB_PASSWORD=[PASSWORD]\nSUMO_ACCESS_KEY={SumoAccessKey}\nREDIS_PASSWORD=#{REDIS_PASSWORD}\n"
            "API_TOKEN=__API_TOKEN__\nALERT_CREDENTIALS=ops-team@acme-corp.io\n"
            "DB_SECRET=arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-Ab12Cd\n"
        ),
        "app/fetch.sh": "curl -fsS -u <user:password> https://api.acme.internal/v1/export\n",
        "app/sentry.env.sh": (
            f"SENTRY_AUTH_TOKEN=sntryu_{'a' * 64}\nSENTRY_TOKEN=sntryu_{'5eed' * 16}\nGRAFANA_TOKEN=glc_{'1' * 40}\n"
        ),
        "app/keys.cfg": "private_key = X25519.secret_length\n",
        "srv/tests/test_login.py": 'def test_login(client):\n    client.login("alice", password="password123")\n    secret = "testing123"\n',
        "docs/alerts.md": f"Alerts go to {cut_webhook}{secrets.token_hex(10)[:19]}… (see the runbook)\n",
    }
    assert _scan(cli, tmp_path, files)["findings"] == []


REAL_VALUES = [
    secretgen.github_pat,
    secretgen.slack_bot_token,
    secretgen.vault_token,
    secretgen.openai_key,
    secretgen.jwt,
    secretgen.aws_secret_access_key,
    secretgen.password,
    secretgen.telegram_bot_token,
    secretgen.nuget_api_key,
    secretgen.vault_unseal_key,
    secretgen.kubeadm_token,
    secretgen.facebook_app_token,
    secretgen.tailscale_auth_key,
    secretgen.twitch_stream_key,
    secretgen.easypost_api_key,
    secretgen.kerberos_asrep_hash,
]


@pytest.mark.parametrize("make", REAL_VALUES, ids=[f.__name__ for f in REAL_VALUES])
def test_real_shaped_values_pass_the_placeholder_filter(make) -> None:
    """The class-6 filters must not cost real credentials, even under the generic rules' strict mode."""
    for _ in range(20):
        value = make()
        assert not is_placeholder(value), value
        assert not is_placeholder(value, strict=True), value


@pytest.mark.parametrize(
    "value",
    [
        "[PASSWORD]",
        "{SumoAccessKey}",
        "#{REDIS_PASSWORD}",
        "#{Octopus.Action.Password}#",
        "@DB_PASSWORD@",
        "__API_KEY__",
        "password>",
        "<user",
        "REDIS_PASSWORD}",
        "https://<user>:<password>@registry.acme.io",
        "sntryu_" + "a" * 64,
        "glc_" + "1" * 40,
        "sntryu_" + "5eed" * 16,
        "0123456789abcdef" * 3,
        "abcdef.0123456789abcdef",
        "ops-team@acme-corp.io",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-Ab12Cd",
    ],
)
def test_placeholder_shapes_are_dropped(value: str) -> None:
    assert is_placeholder(value)


@pytest.mark.parametrize("value", ["password123", "testing123", "Admin2024!", "welcome1", "P@ssw0rd"])
def test_dictionary_word_fixture_passwords_are_dropped_by_generic_rules_in_test_files_only(value: str) -> None:
    """In a test suite's files, a dictionary word and digits under a generic name=value rule is a
    fixture. Elsewhere (an application's .env) a weak real password is still a leak, and provider
    and parser rules keep it everywhere."""
    assert is_placeholder(value, strict=True, test_fixture=True)
    assert not is_placeholder(value, strict=True)
    assert not is_placeholder(value, test_fixture=True)


def test_a_weak_password_in_an_application_env_file_is_still_a_finding(cli, tmp_path: Path) -> None:
    files = {
        "app/.env": "POSTGRES_PASSWORD=admin2024\n",
        "app/tests/test_db.py": 'DB = connect(password="admin2024")\n',
    }
    found = {(f["secret"], loc["path"]) for f in _scan(cli, tmp_path, files)["findings"] for loc in f["locations"]}
    assert found == {("admin2024", "/app/.env")}


@pytest.mark.parametrize(
    ("secret", "line"),
    [
        ("X25519.secret_length", "private_key = X25519.secret_length"),
        ("settings.DB_PASSWORD", "password: settings.DB_PASSWORD"),
        (
            "prod/db-password-Ab12Cd",
            "SECRET=arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-password-Ab12Cd",
        ),
    ],
)
def test_attribute_expressions_and_arn_parts_are_not_generic_secrets(secret: str, line: str) -> None:
    assert is_heuristic_non_secret(secret, line)

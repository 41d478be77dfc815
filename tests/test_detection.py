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
from imagebuilder import EmptyStep, Entry, ImageSpec, Layer, write_docker_archive

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
    secretgen.cloudflare_api_token,
    secretgen.twilio_auth_token,
    secretgen.telegram_bot_token_legacy,
    secretgen.django_secret_key,
    secretgen.wordpress_salt,
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


# ---------------------------------------------------------------- issue 17, classes 1 and 2


def _where(report: dict) -> dict[tuple[str, str, int | None], str]:
    """(rule id, path, line) -> secret, for every location of every finding."""
    return {(f["rule_id"], loc["path"], loc["line"]): f["secret"] for f in report["findings"] for loc in f["locations"]}


def _word() -> str:
    """A command-line password: letters and digits, so it is one shell word."""
    while True:
        word = secretgen.password().translate(str.maketrans("", "", "!#%&*+-=?@^_~"))[:14] + "7q"
        if not is_placeholder(word, strict=True):  # dropping the symbols may have joined "xx" and "xx"
            return word


def test_client_library_calls_take_the_provider_key_shape_where_the_call_names_the_provider(
    cli, tmp_path: Path
) -> None:
    """Issue 17, class 1: a key handed straight to a client library, with no variable naming it."""
    cf, sid, tw, dd_api, dd_app = (
        secretgen.cloudflare_api_token(),
        secretgen.twilio_account_sid(),
        secretgen.twilio_auth_token(),
        secretgen.datadog_api_key(),
        secretgen.datadog_app_key(),
    )
    tg, mg, key_id, aws = (
        secretgen.telegram_bot_token_legacy(),
        secretgen.mailgun_api_key(),
        secretgen.aws_access_key_id(),
        secretgen.aws_secret_access_key(),
    )
    auth_pw = _word()
    tw2, dd_api2, dd_app2 = secretgen.twilio_auth_token(), secretgen.datadog_api_key(), secretgen.datadog_app_key()
    files = {
        "app/dns.go": f'func client() {{\n\tapi, err := cloudflare.NewWithAPIToken("{cf}")\n}}\n',
        "app/sms.py": f'from twilio.rest import Client\nclient = Client("{sid}", "{tw}")\n',
        "app/metrics.py": f'from datadog import initialize\ninitialize(\n    api_key="{dd_api}",\n    app_key="{dd_app}",\n)\n',
        "app/bot.js": f"const {{ Telegraf }} = require('telegraf')\nconst bot = new Telegraf('{tg}')\n",
        "app/mail.js": f"const mg = mailgun.client({{\n  username: 'api',\n  key: '{mg}',\n}});\n",
        "app/s3.go": f'creds := credentials.NewStaticCredentials("{key_id}", "{aws}", "")\n',
        "app/export.py": f'requests.get(url, auth=("svc-export", "{auth_pw}"))\n',
        # Twilio's and Datadog's quickstarts: the values named only by generic names, next to their pair
        "app/sms.js": f"const accountSid = '{sid}';\nconst authToken = '{tw2}';\nconst client = require('twilio')(accountSid, authToken);\n",
        "app/dd.py": f'options = {{\n    "api_key": "{dd_api2}",\n    "app_key": "{dd_app2}",\n}}\ninitialize(**options)\n',
    }
    found = _where(_scan(cli, tmp_path, files))
    assert found[("cloudflare.api-token-client", "/app/dns.go", 2)] == cf
    assert found[("twilio.auth-token-client", "/app/sms.py", 2)] == tw
    assert found[("datadog.api-key-client", "/app/metrics.py", 3)] == dd_api
    assert found[("datadog.app-key-client", "/app/metrics.py", 4)] == dd_app
    assert found[("telegram.bot-token-client", "/app/bot.js", 2)] == tg
    assert found[("mailgun.api-key-client", "/app/mail.js", 3)] == mg
    assert found[("aws.secret-access-key-client", "/app/s3.go", 1)] == aws
    assert found[("http.basic-auth-credentials", "/app/export.py", 1)] == auth_pw
    assert found[("twilio.auth-token-client", "/app/sms.js", 2)] == tw2
    assert found[("datadog.api-key-client", "/app/dd.py", 2)] == dd_api2
    assert found[("datadog.app-key-client", "/app/dd.py", 3)] == dd_app2

    references = {
        "app/dns.go": 'api, err := cloudflare.NewWithAPIToken(os.Getenv("CLOUDFLARE_API_TOKEN"))\n',
        "app/sms.py": f'client = Client("{sid}", os.environ["TWILIO_AUTH_TOKEN"])\n',
        "app/metrics.py": 'initialize(api_key="<your api key>", app_key=os.environ["DD_APP_KEY"])\n',
        "app/bot.js": "const bot = new Telegraf(process.env.BOT_TOKEN)\n",
        "app/repo.rb": f'def initialize(checksum = "{secretgen.datadog_api_key()}")\nend\n',
        "app/export.py": 'requests.get(url, auth=("user", "pass"))\nrequests.get(url, auth=(USER, PASSWORD))\n',
    }
    assert _scan(cli, tmp_path, references)["findings"] == []


def test_kubernetes_env_entries_name_the_secret_on_the_line_before_its_value(cli, tmp_path: Path) -> None:
    db, redis, smtp = secretgen.password(), secretgen.password(), secretgen.password()
    manifest = (
        "spec:\n  containers:\n    - name: app\n      env:\n"
        f'        - name: DB_PASSWORD\n          value: "{db}"\n'
        "        - name: REDIS_PASSWORD\n          # rotated by ops\n"
        f"          value: '{redis}'\n"
        '        - name: API_TOKEN\n          value: "$(SHARED_API_TOKEN)"\n'
        '        - name: SESSION_SECRET\n          value: "{{ .Values.session.secret }}"\n'
        "        - name: JWT_SECRET\n          valueFrom:\n            secretKeyRef: {name: app, key: jwt}\n"
    )
    hcl = f'  environment = [{{ name = "SMTP_PASSWORD", value = "{smtp}" }}]\n'
    found = _where(_scan(cli, tmp_path, {"k8s/deploy.yaml": manifest, "infra/task.tf": hcl}))
    assert found == {
        ("generic.name-value-secret", "/k8s/deploy.yaml", 6): db,
        ("generic.name-value-secret", "/k8s/deploy.yaml", 9): redis,
        ("generic.name-value-secret", "/infra/task.tf", 1): smtp,
    }


def test_php_define_constants_and_wordpress_keys(cli, tmp_path: Path) -> None:
    db = _word()
    salts = {name: secretgen.wordpress_salt() for name in ("AUTH_KEY", "SECURE_AUTH_KEY", "NONCE_SALT")}
    config = (
        "<?php\ndefine( 'DB_NAME', 'wordpress' );\ndefine( 'DB_USER', 'wp' );\n"
        f"define( 'DB_PASSWORD', '{db}' );\n"
        + "".join(f"define( '{name}', '{value}' );\n" for name, value in salts.items())
    )
    sample = (
        "<?php\ndefine( 'DB_PASSWORD', 'password_here' );\n"
        "define( 'AUTH_KEY',         'put your unique phrase here' );\n"
        "define( 'SECURE_AUTH_KEY', getenv_docker('WORDPRESS_SECURE_AUTH_KEY', '') );\n"
    )
    found = _where(
        _scan(cli, tmp_path, {"var/www/html/wp-config.php": config, "var/www/html/wp-config-sample.php": sample})
    )
    assert found == {
        ("php.define-secret", "/var/www/html/wp-config.php", 4): db,
        ("wordpress.auth-key", "/var/www/html/wp-config.php", 5): salts["AUTH_KEY"],
        ("wordpress.auth-key", "/var/www/html/wp-config.php", 6): salts["SECURE_AUTH_KEY"],
        ("wordpress.auth-key", "/var/www/html/wp-config.php", 7): salts["NONCE_SALT"],
    }


def test_passwords_on_command_lines_in_histories_scripts_and_build_steps(cli, tmp_path: Path) -> None:
    pw = [_word() for _ in range(13)]
    bash = (
        "ls -la\n"
        f"mysql -u root -p'{pw[0]}' -h orders-db orders\n"
        f"sshpass -p {pw[1]} ssh deploy@10.0.0.5\n"
        f"htpasswd -bc /etc/nginx/.htpasswd admin {pw[2]}\n"
        f"psexec \\\\fs01 -u CORP\\svc -p {pw[3]} cmd\n"
        f"redis-cli -h cache -a '{pw[4]}' ping\n"
        f"mongosh mongodb://db01/admin -u admin -p {pw[5]}\n"
        "mysql -u root -p orders\n"
        'mysql -u root -p"$MYSQL_ROOT_PASSWORD"\n'
        'sshpass -p "$SSH_PASS" ssh deploy@10.0.0.5\n'
        "redis-cli -a <password> ping\n"
        "mongosh -u admin -p --authenticationDatabase admin\n"
    )
    zsh = f": 1718000000:0;mysqldump -uroot -p{pw[6]} --all-databases > all.sql\n"
    ash = f"ldapsearch -x -D cn=admin,dc=corp -w {pw[7]} -b dc=corp\n"
    script = (
        f"#!/bin/sh\nsqlcmd -S db -U sa -P '{pw[8]}' -Q 'select 1'\nkeytool -list -keystore a.jks -storepass {pw[9]}\n"
    )
    image = tmp_path / "img.tar"
    steps = [
        Layer(
            [
                Entry("root/.bash_history", bash.encode()),
                Entry("root/.zsh_history", zsh.encode()),
                Entry("root/.ash_history", ash.encode()),
                Entry("usr/local/bin/init-db.sh", script.encode()),
            ]
        ),
        EmptyStep(f"/bin/sh -c echo 'root:{pw[10]}' | chpasswd"),
        EmptyStep(f"/bin/sh -c smbclient //fs01/backup -U 'CORP\\svc%{pw[11]}' -c ls"),
        EmptyStep(f"/bin/sh -c openssl pkcs12 -export -in a.crt -inkey a.key -out a.p12 -passout pass:{pw[12]}"),
    ]
    write_docker_archive(image, [ImageSpec(steps=steps)])
    report = scan_json(cli, image, "--show-secrets")
    found = {(f["rule_id"], f["secret"]) for f in report["findings"]}
    assert found == {
        ("cli.mysql-password", pw[0]),
        ("cli.sshpass-password", pw[1]),
        ("cli.htpasswd-password", pw[2]),
        ("cli.psexec-password", pw[3]),
        ("cli.redis-cli-password", pw[4]),
        ("cli.mongo-password", pw[5]),
        ("cli.mysql-password", pw[6]),
        ("cli.ldap-bind-password", pw[7]),
        ("cli.sqlcmd-password", pw[8]),
        ("cli.keytool-password", pw[9]),
        ("cli.chpasswd-password", pw[10]),
        ("cli.smbclient-password", pw[11]),
        ("cli.openssl-pass-argument", pw[12]),
    }
    lines = _where(report)
    assert lines[("cli.mysql-password", "/root/.bash_history", 2)] == pw[0]
    assert lines[("cli.mongo-password", "/root/.bash_history", 7)] == pw[5]
    assert lines[("cli.sqlcmd-password", "/usr/local/bin/init-db.sh", 2)] == pw[8]


def test_odbc_and_ado_connection_strings_with_the_password_anywhere(cli, tmp_path: Path) -> None:
    a, b, c, d = (_word() for _ in range(4))
    text = (
        f"Server=sql01;Database=hr;User Id=hr_app;Password={a};\n"
        f"Pwd={b};Uid=sa;Server=tcp:sql02,1433;Database=billing;\n"
        f"DSN=warehouse;UID=etl;PWD={{{c};x}};\n"
        f'"Orders": "Password={d};User ID=orders_api;Data Source=orders-db;"\n'
        'var cs = string.Format("Server={0};Database={1};User Id={2};Password={3};", h, d, u, p);\n'
        'conn = pyodbc.connect(f"DRIVER={{ODBC Driver 18}};SERVER={host};UID={user};PWD={db_password}")\n'
    )
    found = _where(_scan(cli, tmp_path, {"app/appsettings.txt": text}))
    assert found == {
        ("url.connection-string-password", "/app/appsettings.txt", 1): a,
        ("url.connection-string-password-first", "/app/appsettings.txt", 2): b,
        ("url.connection-string-password", "/app/appsettings.txt", 3): f"{{{c};x}}",
        ("url.connection-string-password-first", "/app/appsettings.txt", 4): d,
    }


def test_credential_files_found_by_name_wherever_they_were_copied(cli, tmp_path: Path) -> None:
    """Issue 17, class 2: .pgpass, env files named env.production / production.env / .env.local,
    and kubeconfigs named k3s.yaml, rke2.yaml, admin.conf or anything.yaml with kind: Config."""
    pg, p1, p2, p3, word = secretgen.password(), _word(), _word(), _word(), "tangerine-orbit"
    key_pem = secretgen.ec_private_key_pem()
    kubeconfig = (
        "apiVersion: v1\nclusters:\n- cluster:\n    server: https://127.0.0.1:6443\n  name: default\n"
        "kind: Config\nusers:\n- name: default\n  user:\n"
        f"    client-key-data: {base64.b64encode(key_pem.encode()).decode()}\n"
    )
    files = {
        "root/.pgpass": f"# host:port:db:user:password\norders-db:5432:orders:app:{pg}\n",
        "srv/app/env.production": f"RAILS_ENV=production\nSMTP_PASSWORD={p1}\nMAIL_PASSWORD={word}\n",
        "srv/app/production.env": f"DB_PASSWORD={p2}\n",
        "srv/app/.env.local": f"API_TOKEN={p3}\n",
        "etc/rancher/k3s/k3s.yaml": kubeconfig,
        "etc/rancher/rke2/rke2.yaml": kubeconfig,
        "root/admin.conf": kubeconfig,
        "opt/deploy/prod-eu.yaml": kubeconfig,
        # example files hold the shape of a value: a word there is not a leak
        "srv/app/app.env.example": f"MAIL_PASSWORD={word}\n",
    }
    found = _where(_scan(cli, tmp_path, files))
    assert found[("file.pgpass.password", "/root/.pgpass", 2)] == pg
    assert found[("file.dotenv.secret", "/srv/app/env.production", 3)] == word
    assert ("file.dotenv.secret", "/srv/app/production.env", 1) in found
    assert ("file.dotenv.secret", "/srv/app/.env.local", 1) in found
    for path in (
        "/etc/rancher/k3s/k3s.yaml",
        "/etc/rancher/rke2/rke2.yaml",
        "/root/admin.conf",
        "/opt/deploy/prod-eu.yaml",
    ):
        assert found[("file.kubeconfig.client-key", path, 10)] == key_pem
    assert not any(path == "/srv/app/app.env.example" for _, path, _ in found)


def test_rails_and_django_keys_in_toml_json_yaml_and_compose(cli, tmp_path: Path) -> None:
    rails = [secretgen.rails_secret_key_base() for _ in range(3)]
    django = [secretgen.django_secret_key() for _ in range(4)]
    insecure = secretgen.django_secret_key(insecure=True)
    files = {
        "app/config.toml": f'[rails]\nsecret_key_base = "{rails[0]}"\n[django]\nSECRET_KEY = "{django[0]}"\n',
        "app/settings.json": json.dumps({"secret_key_base": rails[1], "SECRET_KEY": django[1]}),
        "app/docker-compose.yml": (
            "services:\n  web:\n    environment:\n"
            f"      - SECRET_KEY_BASE={rails[2]}\n      - DJANGO_SECRET_KEY={django[2]}\n"
        ),
        "app/proj/settings.py": f"SECRET_KEY = '{insecure}'\n",
        "app/k8s/values.yaml": f"django:\n  secret_key: '{django[3]}'\n",
        "app/proj/settings_tpl.py": "SECRET_KEY = '{{ secret_key }}'\nSECRET_KEY = os.environ['DJANGO_SECRET_KEY']\n",
    }
    found = _where(_scan(cli, tmp_path, files))
    secrets_by_rule = {(rule, value) for (rule, _, _), value in found.items()}
    assert {("rails.secret-key-base", v) for v in rails} <= secrets_by_rule
    assert {("django.secret-key", v) for v in django} <= secrets_by_rule
    assert ("django.secret-key-insecure", insecure) in secrets_by_rule
    assert not any(path == "/app/proj/settings_tpl.py" for _, path, _ in found)


def test_shadow_hashes_of_accounts_that_can_log_in_root_first(cli, tmp_path: Path) -> None:
    root, deploy = secretgen.shadow_hash(scheme="6"), secretgen.shadow_hash(scheme="y")
    shadow = (
        f"root:{root}:19876:0:99999:7:::\ndaemon:*:19876:0:99999:7:::\n"
        f"deploy:{deploy}:19876:0:99999:7:::\nlocked:!{secretgen.shadow_hash(scheme='5')}:19876::::::\n"
        "nopw:!!:19876::::::\n"
    )
    report = _scan(cli, tmp_path, {"etc/shadow": shadow, "etc/shadow-": shadow})
    by_secret = {
        f["secret"]: (f["rule_id"], f["severity"], sorted(loc["path"] for loc in f["locations"]))
        for f in report["findings"]
    }
    assert by_secret == {
        root: ("os.shadow-root-password-hash", "high", ["/etc/shadow", "/etc/shadow-"]),
        deploy: ("os.shadow-password-hash", "medium", ["/etc/shadow", "/etc/shadow-"]),
    }


def test_wp_config_inside_a_tar_gz_inside_a_layer_is_found(cli, tmp_path: Path) -> None:
    import gzip
    import io
    import tarfile

    db, salt = _word(), secretgen.wordpress_salt()
    config = f"<?php\ndefine( 'DB_PASSWORD', '{db}' );\ndefine( 'LOGGED_IN_KEY', '{salt}' );\n".encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("wordpress/wp-config.php")
        info.size = len(config)
        tar.addfile(info, io.BytesIO(config))
    found = _where(_scan_bytes(cli, tmp_path, {"srv/backup/site.tar.gz": gzip.compress(buf.getvalue())}))
    assert found == {
        ("php.define-secret", "/srv/backup/site.tar.gz!/wordpress/wp-config.php", 2): db,
        ("wordpress.auth-key", "/srv/backup/site.tar.gz!/wordpress/wp-config.php", 3): salt,
    }


def _scan_bytes(cli, tmp_path: Path, files: dict[str, bytes]) -> dict:
    path = tmp_path / "img.tar"
    write_docker_archive(path, [ImageSpec(steps=[Layer([Entry(p, d) for p, d in files.items()])])])
    return scan_json(cli, path, "--show-secrets")


@pytest.mark.parametrize(
    "value",
    [
        "8ag8d)whhbj0j@$(j!%8&@q5n8472na8#w%_zp63biz$j%jhfd",  # $( and %( by chance in a Django key
        "oof_0*p9emhbf%(5)+8$g29dlz+h4qhak3y9dg!7m=8l_v34k%h",
        "x8AfpA={J~=aXME&{;$SGUF!S3i[1#jj0IkSKVB(QWjuG/&BEeH`)4+X9<3#k2iH",
        "Q<zk>p;Y7~{ab}R2#v!nW8@m^L5*tE0(s)_-+=|,.?/[F]9gH3jKx6cV1bN4 Mw",  # <zk> and {ab} by chance
    ],
)
def test_generated_keys_holding_template_characters_by_chance_are_not_placeholders(value: str) -> None:
    assert not is_placeholder(value)


@pytest.mark.parametrize(
    "value",
    [
        "${DB_PASSWORD}",
        "x${DB_PASS",
        "$(cat /run/secrets/db)",
        "{{ .Values.token }}",
        "%(password)s",
        "put your unique phrase here",
        "password_here",
        "testpassword",
    ],
)
def test_templates_and_sample_values_are_still_placeholders(value: str) -> None:
    assert is_placeholder(value)

"""Tests for the structured credential-file parsers.

Every secret-shaped value is generated at test time, so this file never trips a secret scanner
(including our own) and never teaches one a fixed string.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import secrets
import string
import time

import pytest
import secretgen

from secretscan.detect import credfiles
from secretscan.detect.credfiles import PARSERS, is_placeholder, parse, parser_for
from secretscan.detect.match import Match


def tok(n: int = 24) -> str:
    """A random secret-looking token (letters/digits only, so it is never a placeholder)."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def check(m: Match, data: bytes, rule: str, secret: str, line: int, raw: str) -> None:
    assert m.rule_id == rule
    assert m.secret == secret
    assert m.line == line
    assert data[m.start : m.end] == raw.encode()
    assert m.context and secret not in m.context


# ---------------------------------------------------------------- parser_for


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/root/.docker/config.json", "docker-config"),
        ("home/app/.dockercfg", "docker-config"),
        ("/root/.npmrc", "npmrc"),
        ("/root/.pypirc", "pypirc"),
        ("/etc/pip.conf", "pip-conf"),
        ("/root/.config/pip/pip.ini", "pip-conf"),
        ("/root/.netrc", "netrc"),
        ("/root/_netrc", "netrc"),
        ("/root/.git-credentials", "git-credentials"),
        ("/root/.aws/credentials", "aws"),
        ("/root/.aws/config", "aws"),
        ("/root/.kube/config", "kubeconfig"),
        ("/srv/kubeconfig", "kubeconfig"),
        ("/srv/prod.kubeconfig", "kubeconfig"),
        ("/app/.env", "dotenv"),
        ("/app/.env.production", "dotenv"),
        ("/app/prod.env", "dotenv"),
        ("/etc/nginx/.htpasswd", "htpasswd"),
        ("/app/config/application.properties", "properties"),
        ("/root/.m2/settings.xml", "maven-settings"),
        ("/root/.m2/settings-security.xml", "maven-settings"),
        ("/etc/rancher/k3s/k3s.yaml", "kubeconfig"),
        ("/etc/rancher/rke2/rke2.yaml", "kubeconfig"),
        ("/root/admin.conf", "kubeconfig"),
        ("/etc/kubernetes/kubelet.conf", "kubeconfig"),
        ("/srv/kubeconfig-prod.yaml", "kubeconfig"),
        ("/root/.kube/config-staging", "kubeconfig"),
        ("/opt/deploy/clusters/prod.yml", "kubeconfig"),
        ("/root/.pgpass", "pgpass"),
        ("/var/lib/postgresql/pgpass.conf", "pgpass"),
        ("/etc/shadow", "shadow"),
        ("/etc/shadow-", "shadow"),
        ("/etc/gshadow", "shadow"),
        ("/var/backups/shadow.bak", "shadow"),
        ("/srv/backup/etc.tar.gz!etc/shadow", "shadow"),
        ("/srv/backup/etc.tar.gz!/etc/gshadow-", "shadow"),
        ("/app/.env.local", "dotenv"),
        ("/app/.env.production.local", "dotenv"),
        ("/srv/app/env.production", "dotenv"),
        ("/srv/app/production.env", "dotenv"),
        ("/srv/app/app.env.staging", "dotenv"),
        ("/etc/environment", "dotenv"),
        ("/srv/release.tar!app/.env", "dotenv"),
    ],
)
def test_parser_for_known_paths(path: str, name: str) -> None:
    assert parser_for(path) is PARSERS[name]
    assert credfiles.parser_name_for(path) == name


@pytest.mark.parametrize(
    "path",
    [
        "/app/config.json",
        "/etc/passwd",
        "/root/.kube/cache/x",
        "/app/.envrc",
        "/usr/lib/credentials",
        # example env files hold what a value should look like; env.* code is code
        "/app/.env.example",
        "/app/app.env.sample",
        "/app/.env.template",
        "/app/src/env.py",
        "/app/src/env.d.ts",
        "/app/bin/env.sh",
        "/usr/bin/env",
        # a shadow-named file outside /etc is not the system's password database
        "/home/app/shadow",
        "/usr/share/doc/shadow",
    ],
)
def test_parser_for_unrelated_paths(path: str) -> None:
    assert parser_for(path) is None
    assert credfiles.parser_name_for(path) is None


def test_parse_dispatches_and_rejects_unknown_names() -> None:
    assert parse("netrc", b"") == []
    with pytest.raises(KeyError):
        parse("no-such-parser", b"")


# ---------------------------------------------------------------- placeholders


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        "${TOKEN}",
        "$TOKEN",
        "{{ .Values.pw }}",
        "<your-token>",
        "changeme",
        "CHANGEME",
        "xxxxxxxx",
        "xxxx-xxxx",
        "********",
        "password",
        "secret",
        "null",
        "None",
        "true",
        "false",
        "%NPM_TOKEN%",
        "'${A}'",
    ],
)
def test_placeholders(value: str) -> None:
    assert is_placeholder(value)


def test_real_values_are_not_placeholders() -> None:
    assert not is_placeholder(tok())
    assert not is_placeholder("$apr1$" + tok(8) + "$" + tok(22))


# ---------------------------------------------------------------- docker-config


def test_docker_config_auth_password_and_identitytoken() -> None:
    pw, pw2, ident = tok(), tok(), tok(40)
    auth = b64(f"deploy:{pw}")
    doc = {
        "auths": {
            "registry.example.com": {"auth": auth},
            "other.example.com": {"username": "ci", "password": pw2},
            "id.example.com": {"identitytoken": ident},
        },
        "credsStore": "desktop",
    }
    data = json.dumps(doc, indent=2).encode()
    m1, m2, m3 = parse("docker-config", data)
    check(m1, data, "file.docker-config.auth", pw, 4, auth)
    assert m1.context == 'auths."registry.example.com".auth (user "deploy")'
    check(m2, data, "file.docker-config.auth", pw2, 8, pw2)
    check(m3, data, "file.docker-config.auth", ident, 11, ident)
    assert m1.confidence == "high"


def test_docker_legacy_dockercfg() -> None:
    pw = tok()
    auth = b64(f"u:{pw}")
    data = json.dumps({"https://index.docker.io/v1/": {"auth": auth, "email": "a@b.c"}}).encode()
    (m,) = parse("docker-config", data)
    check(m, data, "file.docker-config.auth", pw, 1, auth)
    assert str(m.context).startswith('"https://index.docker.io/v1/".auth')


def test_docker_config_negatives() -> None:
    auths = {
        "r": {"auth": b64("u:${PASS}")},
        "s": {"auth": "!!notbase64!!"},
        "t": {"auth": ""},
        "v": {"auth": b64("nocolon")},
        "w": {"password": "changeme"},
        "x": "str",
        "y": {"auth": 5},
    }
    doc = {"auths": auths}
    assert parse("docker-config", json.dumps(doc).encode()) == []
    assert parse("docker-config", b'{"auths": {"r": {"auth": "') == []
    assert parse("docker-config", b"[1, 2]") == []


# ---------------------------------------------------------------- npmrc


def test_npmrc_token_auth_and_password() -> None:
    token, pw, pw2 = tok(36), tok(), tok()
    auth, enc = b64(f"bob:{pw}"), b64(pw2)
    text = (
        "registry=https://registry.npmjs.org/\n"
        f"//registry.npmjs.org/:_authToken={token}\n"
        "; comment\n"
        f'//npm.example.com/:_auth="{auth}"\n'
        f"//npm.example.com/:_password={enc}\n"
    )
    data = text.encode()
    m1, m2, m3 = parse("npmrc", data)
    check(m1, data, "file.npmrc.auth-token", token, 2, token)
    assert m1.context == "//registry.npmjs.org/:_authToken"
    check(m2, data, "file.npmrc.auth", pw, 4, auth)
    assert '"bob"' in str(m2.context)
    check(m3, data, "file.npmrc.auth", pw2, 5, enc)


def test_npmrc_negatives() -> None:
    data = b"//r/:_authToken=${NPM_TOKEN}\n_authToken=\n# //r/:_authToken=abcdefgh\n_auth=%%%\nfoo"
    assert parse("npmrc", data) == []


# ---------------------------------------------------------------- pypirc


def test_pypirc_password() -> None:
    pw = "pypi-" + tok(40)
    data = f"[distutils]\nindex-servers = pypi\n\n[pypi]\nusername = __token__\npassword = {pw}\n".encode()
    (m,) = parse("pypirc", data)
    check(m, data, "file.pypirc.password", pw, 6, pw)
    assert m.context == '[pypi] password (user "__token__")'


def test_pypirc_negatives() -> None:
    assert parse("pypirc", b"[pypi]\nusername = x\npassword =\n[t]\npassword = <token>\n[[[\n=\n") == []


# ---------------------------------------------------------------- pip-conf


def test_pip_conf_url_passwords_including_continuations() -> None:
    pw, pw2 = tok(), tok()
    data = (
        "[global]\n"
        f"index-url = https://alice:{pw}@pypi.example.com/simple\n"
        "extra-index-url =\n"
        "    https://pypi.org/simple\n"
        f"    https://bob:{pw2}@mirror.example.com/simple\n"
    ).encode()
    m1, m2 = parse("pip-conf", data)
    check(m1, data, "file.pip-conf.url-password", pw, 2, pw)
    assert '"alice"' in str(m1.context) and "pypi.example.com" in str(m1.context)
    check(m2, data, "file.pip-conf.url-password", pw2, 5, pw2)


def test_pip_conf_negatives() -> None:
    data = b"[global]\nindex-url = https://pypi.org/simple\nextra-index-url = https://u:${PW}@h/\ntimeout=6\n"
    assert parse("pip-conf", data) == []


# ---------------------------------------------------------------- netrc


def test_netrc_multiline_and_single_line() -> None:
    pw, pw2 = tok(), tok()
    data = (
        "# comment password notasecret1\n"
        "machine api.example.com\n  login deploy\n  password " + pw + "\n"
        "macdef init\npassword inmacro12345\n\n"
        f"machine git.example.com password {pw2} login ci\n"
    ).encode()
    m1, m2 = parse("netrc", data)
    check(m1, data, "file.netrc.password", pw, 4, pw)
    assert m1.context == 'machine "api.example.com" (login "deploy")'
    check(m2, data, "file.netrc.password", pw2, 8, pw2)
    assert '"ci"' in str(m2.context)


def test_netrc_negatives() -> None:
    assert parse("netrc", b"machine h login u password $PASSWORD\ndefault login x password\n") == []


# ---------------------------------------------------------------- git-credentials


def test_git_credentials() -> None:
    token = "ghp_" + tok(36)
    data = f"https://octo:{token}@github.com\nhttps://gitlab.example.com\n".encode()
    (m,) = parse("git-credentials", data)
    check(m, data, "file.git-credentials.password", token, 1, token)
    assert m.context == '"github.com" (user "octo")'


def test_git_credentials_percent_encoded_password() -> None:
    pw = tok(10) + "@/" + tok(10)
    raw = pw.replace("@", "%40").replace("/", "%2F")
    data = f"\nhttps://u:{raw}@h.example.com/path\n".encode()
    (m,) = parse("git-credentials", data)
    check(m, data, "file.git-credentials.password", pw, 2, raw)


def test_git_credentials_negatives() -> None:
    assert parse("git-credentials", b"https://u:@h\nhttps://u:xxxxxxxx@h\nnot a url\nhttps://h/a:b@c\n") == []


# ---------------------------------------------------------------- aws


def test_aws_credentials() -> None:
    key_id = "AKIA" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16))
    sk, st = tok(40), tok(120)
    data = (
        f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {sk}\n\n"
        f"[profile prod]\naws_secret_access_key={sk}x\naws_session_token = {st}\n"
    ).encode()
    m1, m2, m3 = parse("aws", data)
    check(m1, data, "file.aws.secret-access-key", sk, 3, sk)
    assert m1.context == f"[default] aws_secret_access_key (key id {key_id})"
    check(m2, data, "file.aws.secret-access-key", sk + "x", 6, sk + "x")
    assert m2.context == "[profile prod] aws_secret_access_key"
    check(m3, data, "file.aws.session-token", st, 7, st)


def test_aws_negatives() -> None:
    data = b"[default]\naws_access_key_id = x\naws_secret_access_key =\naws_session_token = <token>\n"
    assert parse("aws", data) == []


# ---------------------------------------------------------------- kubeconfig


def test_kubeconfig_users() -> None:
    token, pw, idt, csec = tok(60), tok(), tok(50), tok()
    pem = "-----BEGIN RSA PRIVATE KEY-----\n" + b64(tok(48)) + "\n-----END RSA PRIVATE KEY-----\n"
    key_data = b64(pem)
    data = f"""apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {{server: "https://k8s.example.com"}}
users:
- name: admin
  user:
    token: {token}
- name: cert
  user:
    client-certificate-data: {b64("not a key")}
    client-key-data: {key_data}
- name: basic
  user:
    username: admin
    password: "{pw}"
- name: oidc
  user:
    auth-provider:
      name: oidc
      config:
        client-secret: {csec}
        id-token: {idt}
- name: ph
  user:
    token: ${{K8S_TOKEN}}
""".encode()
    got = parse("kubeconfig", data)
    assert [m.rule_id for m in got] == [
        "file.kubeconfig.token",
        "file.kubeconfig.client-key",
        "file.kubeconfig.password",
        "file.kubeconfig.token",
        "file.kubeconfig.token",
    ]
    check(got[0], data, "file.kubeconfig.token", token, 9, token)
    assert got[0].context == 'users."admin".user.token'
    check(got[1], data, "file.kubeconfig.client-key", pem, 13, key_data)
    check(got[2], data, "file.kubeconfig.password", pw, 17, pw)
    check(got[3], data, "file.kubeconfig.token", idt, 24, idt)
    assert got[3].context == 'users."oidc".user.auth-provider.config.id-token'
    check(got[4], data, "file.kubeconfig.token", csec, 23, csec)


def test_kubeconfig_negatives() -> None:
    assert parse("kubeconfig", b"users:\n- name: a\n  user:\n    token: ''\n- 5\n- user: [1]\n") == []
    assert parse("kubeconfig", b"users: {a: b}\n") == []
    assert parse("kubeconfig", b"users:\n- user:\n    token: [unterminated\n") == []
    assert parse("kubeconfig", b"users:\n- user: {token: " + tok().encode() + b"}\n" + b"#" * (6 << 20)) == []


# ---------------------------------------------------------------- dotenv


def test_dotenv() -> None:
    a, b, c = tok(), tok(), tok()
    data = (
        "# comment\nexport DB_PASSWORD='" + a + "'\nAPP_NAME=shop\n"
        f'STRIPE_API_KEY="{b}"\nGITHUB_TOKEN={c} # inline comment\n'
        "DB_PASSWORD_FILE=/run/secrets/db\nAUTH_TYPE=oauth2\nREDIS_PASSWORD=${REDIS_PASSWORD}\nEMPTY_SECRET=\n"
    ).encode()
    m1, m2, m3 = parse("dotenv", data)
    check(m1, data, "file.dotenv.secret", a, 2, a)
    assert m1.context == "DB_PASSWORD" and m1.confidence == "medium"
    check(m2, data, "file.dotenv.secret", b, 4, b)
    check(m3, data, "file.dotenv.secret", c, 5, c)


def test_dotenv_negatives() -> None:
    assert parse("dotenv", b'TOKEN="\nPASSWORD=changeme\n=\nexport\nSECRET="<secret>"\n') == []


# ---------------------------------------------------------------- htpasswd


def test_htpasswd_hashes() -> None:
    alphabet = string.ascii_letters + string.digits + "./"
    apr1 = "$apr1$" + tok(8) + "$" + "".join(secrets.choice(alphabet) for _ in range(22))
    bcrypt = "$2y$10$" + "".join(secrets.choice(alphabet) for _ in range(53))
    sha = "{SHA}" + base64.b64encode(hashlib.sha1(tok().encode()).digest()).decode()
    data = f"alice:{apr1}\n# bob:disabled\nbob:{bcrypt}\r\ncarol:{sha}\n".encode()
    got = parse("htpasswd", data)
    assert len(got) == 3
    check(got[0], data, "file.htpasswd.hash", apr1, 1, apr1)
    assert got[0].context == 'user "alice"'
    check(got[1], data, "file.htpasswd.hash", bcrypt, 3, bcrypt)
    check(got[2], data, "file.htpasswd.hash", sha, 4, sha)


def test_htpasswd_negatives() -> None:
    assert parse("htpasswd", b"alice:\nbob:plain\nnocolon\ncarol:xxxxxxxxxxxxx\n") == []


# ---------------------------------------------------------------- properties


def test_properties() -> None:
    a, b, c1, c2 = tok(), tok(), tok(), tok()
    data = (
        f"# comment password={tok()}\nspring.datasource.url=jdbc:h2:mem\n"
        f"spring.datasource.password={a}\n"
        f"stripe.api-key : {b}\n"
        f"oauth.client-secret={c1}\\\n    {c2}\n"
        "ldap.password=${LDAP_PASSWORD}\noauth.token-uri=https://x.example.com/token\n"
    ).encode()
    m1, m2, m3 = parse("properties", data)
    check(m1, data, "file.properties.secret", a, 3, a)
    assert m1.context == "spring.datasource.password" and m1.confidence == "medium"
    check(m2, data, "file.properties.secret", b, 4, b)
    assert m3.secret == c1 + c2 and m3.line == 5
    assert data[m3.start : m3.end] == f"{c1}\\\n    {c2}".encode()


def test_properties_negatives() -> None:
    assert parse("properties", b"password=\nsecret=****\n# token=\\\ntoken = none\n\\\n") == []


def test_properties_judge_a_key_by_its_last_parts() -> None:
    """The JDK's net.properties and java.security name settings under ``jdk.http.auth`` and
    ``...credential``; none of them is a secret."""
    a, b = tok(), tok()
    data = (
        "jdk.http.auth.proxying.disabledSchemes=\n"
        "jdk.http.auth.tunneling.disabledSchemes=Basic\n"
        "jdk.security.krb5.default.initiate.credential=always-impersonate\n"
        "app.auth.allowed-schemes=NTLM, Negotiate\n"
        f"app.jwt.secret.key={a}\n"
        f"mail.smtp.auth.password={b}\n"
        "mail.smtp.auth=true\n"
    ).encode()
    assert [m.secret for m in parse("properties", data)] == [a, b]


# ---------------------------------------------------------------- maven-settings


def test_maven_settings() -> None:
    pw, phrase, enc = tok(), tok(), "{" + b64(tok(32)) + "}"
    data = f"""<?xml version="1.0" encoding="UTF-8"?>
<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">
  <servers>
    <server>
      <id>nexus</id>
      <username>deploy</username>
      <password>{pw}</password>
    </server>
    <server><id>signing</id><passphrase>{phrase}</passphrase><password>{enc}</password></server>
    <server><id>env</id><password>${{env.NEXUS_PW}}</password></server>
  </servers>
</settings>
""".encode()
    m1, m2, m3 = parse("maven-settings", data)
    check(m1, data, "file.maven-settings.password", pw, 7, pw)
    assert m1.context == 'servers.server[id="nexus"].password'
    check(m2, data, "file.maven-settings.password", phrase, 9, phrase)
    assert str(m2.context).endswith(".passphrase")
    check(m3, data, "file.maven-settings.password", enc, 9, enc)


def test_maven_settings_security_master() -> None:
    master = "{" + b64(tok(32)) + "}"
    data = f"<settingsSecurity>\n  <master>{master}</master>\n</settingsSecurity>\n".encode()
    (m,) = parse("maven-settings", data)
    check(m, data, "file.maven-settings.password", master, 2, master)


def test_maven_settings_negatives() -> None:
    pw = tok()
    dtd = f'<!DOCTYPE s [<!ENTITY p "{pw}">]><settings><servers><server><password>&p;</password>'
    assert parse("maven-settings", (dtd + "</server></servers></settings>").encode()) == []
    assert parse("maven-settings", b"<settings><servers><server><password></password></server>") == []
    blank = b"<settings><servers><server><password>  </password></server></servers></settings>"
    assert parse("maven-settings", blank) == []


# ---------------------------------------------------------------- hostile input


BILLION_LAUGHS_XML = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode() for i in range(1, 10)
    )
    + b"]><settings><servers><server><password>&lol9;</password></server></servers></settings>"
)
BILLION_LAUGHS_YAML = (
    b"a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
    + b"".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n".encode() for i in range(8))
    + b"users: [*i, *i]\n"
)


def garbage_inputs() -> list[bytes]:
    rnd = random.Random(secrets.randbits(32))
    docker = json.dumps({"auths": {"r": {"auth": b64("u:" + tok())}}}).encode()
    return [
        b"",
        b"\x00\xff\xfe" * 1000,
        rnd.randbytes(64 * 1024),
        docker[: len(docker) // 2],
        b"users:\n- name: a\n  user: {token: '",
        b"<settings><servers><server><password>",
        BILLION_LAUGHS_XML,
        BILLION_LAUGHS_YAML,
        b"[" * 100_000,
        b"a: " + b"[" * 100_000,
        b"<a>" * 50_000,
        "pässwörd=\udcff".encode("utf-8", "surrogateescape") + b"\xc3\x28=\xa0\xa1",
    ]


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_garbage_never_raises(name: str) -> None:
    for data in garbage_inputs():
        result = parse(name, data)
        assert isinstance(result, list)
        assert all(isinstance(m, Match) for m in result)


def test_entity_bombs_are_refused() -> None:
    assert parse("maven-settings", BILLION_LAUGHS_XML) == []
    assert parse("kubeconfig", BILLION_LAUGHS_YAML) == []


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_linear_on_pathological_lines(name: str) -> None:
    """Long runs that make naive regexes or repeated searches quadratic must stay fast."""
    size = 1 << 20
    inputs = [
        b"a" * size,
        b" " * size + b"=",
        b"://" * (size // 3),
        b"a:" * (size // 2),
        b'"' * size,
        b"\\" * size,
        b"x\n" * (size // 2),
        b"password " * (size // 9),
    ]
    began = time.monotonic()
    for data in inputs:
        parse(name, data)
    # Linear parsers take a few seconds here even on a loaded machine; a quadratic one takes hours.
    # The bound only has to tell those apart, not measure speed (that is for the benchmarks).
    assert time.monotonic() - began < 60


def test_match_cap_bounds_output() -> None:
    data = b"".join(f"machine h{i} password {tok(8)}\n".encode() for i in range(credfiles.MAX_MATCHES + 50))
    assert len(parse("netrc", data)) == credfiles.MAX_MATCHES


def test_tables_are_read_only() -> None:
    with pytest.raises(TypeError):
        PARSERS["x"] = PARSERS["netrc"]  # type: ignore[index]


# ---------------------------------------------------------------- kubeconfig under other names


def test_a_kubeconfig_copied_to_any_yaml_name_is_parsed_and_other_yaml_is_not() -> None:
    key_pem = "-----BEGIN EC PRIVATE KEY-----\n" + b64(tok(48)) + "\n-----END EC PRIVATE KEY-----\n"
    kubeconfig = (
        "apiVersion: v1\nclusters:\n- cluster:\n    server: https://127.0.0.1:6443\n  name: default\n"
        "kind: Config\nusers:\n- name: default\n  user:\n"
        f"    client-certificate-data: {b64('not a key')}\n    client-key-data: {b64(key_pem)}\n"
    ).encode()
    for path in ("/etc/rancher/k3s/k3s.yaml", "/root/admin.conf", "/opt/deploy/prod-eu.yaml"):
        name = credfiles.parser_name_for(path)
        assert name == "kubeconfig"
        (m,) = parse(name, kubeconfig)
        check(m, kubeconfig, "file.kubeconfig.client-key", key_pem, 11, b64(key_pem))
    compose = f"services:\n  db:\n    environment:\n      users: admin\n      token: {tok()}\n".encode()
    assert parse("kubeconfig", compose) == []
    app_users = f"users:\n- name: admin\n  password: {tok()}\n".encode()
    assert parse("kubeconfig", app_users) == []


# ---------------------------------------------------------------- pgpass


def test_pgpass_passwords_with_escapes_wildcards_and_comments() -> None:
    a, b, c = tok(), tok(12), tok(16)
    data = (
        "# hostname:port:database:username:password\n"
        f"orders-db.internal:5432:orders:orders_app:{a}\n"
        "\n"
        f"*:*:*:replicator:{b[:6]}\\:{b[6:]}\n"
        f"db\\:1:5432:*:odd\\\\user:{c}\r\n"
        "*:*:*:postgres:<password>\n"
        "too:few:fields\n"
    ).encode()
    m1, m2, m3 = parse("pgpass", data)
    check(m1, data, "file.pgpass.password", a, 2, a)
    assert m1.context == 'host "orders-db.internal" port "5432" database "orders" (user "orders_app")'
    check(m2, data, "file.pgpass.password", f"{b[:6]}:{b[6:]}", 4, f"{b[:6]}\\:{b[6:]}")
    check(m3, data, "file.pgpass.password", c, 5, c)
    assert m3.context == 'host "db:1" port "5432" database "*" (user "odd\\\\user")'


def test_pgpass_negatives() -> None:
    data = b"# *:*:*:postgres:" + tok().encode() + b"\n*:*:*:postgres:*\n*:*:*:app:${PGPASSWORD}\nhost:5432:db\n"
    assert parse("pgpass", data) == []


# ---------------------------------------------------------------- shadow


def test_shadow_hashes_of_accounts_that_can_log_in() -> None:
    root, deploy, ftp, web = (secretgen.shadow_hash(scheme=s) for s in ("6", "y", "1", "2b"))
    locked = secretgen.shadow_hash(scheme="5")
    data = (
        f"root:{root}:19876:0:99999:7:::\n"
        "daemon:*:19876:0:99999:7:::\n"
        f"deploy:{deploy}:19876:0:99999:7:::\n"
        f"backup:!{locked}:19876:0:99999:7:::\n"
        "nobody:!:19876::::::\n"
        "svc::19876::::::\n"
        "mail:!!:19876::::::\n"
        f"ftp:{ftp}:19876:0:99999:7:::\n"
        f"web:{web}:19876:0:99999:7:::\n"
        "broken line without fields\n"
    ).encode()
    got = parse("shadow", data)
    assert [(m.rule_id, m.secret, m.line) for m in got] == [
        ("os.shadow-root-password-hash", root, 1),
        ("os.shadow-password-hash", deploy, 3),
        ("os.shadow-password-hash", ftp, 8),
        ("os.shadow-password-hash", web, 9),
    ]
    for m in got:
        assert data[m.start : m.end] == m.secret.encode()
    assert got[0].context == 'account "root"'


def test_shadow_skips_what_is_not_a_crypt_hash() -> None:
    data = b"root:x:0:0:root:/root:/bin/bash\nuser:plaintext:1::::::\n# root:$6$abc:1::::::\n"
    assert parse("shadow", data) == []

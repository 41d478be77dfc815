"""Where no package record speaks of a file: a name = value guess in Python documentation is an
example, listed and never failed on; a type name is no value at all; a provider's token format, a
commented-out assignment and the same value in a config file stay findings."""

from __future__ import annotations

import os
import py_compile
import secrets
import time
from pathlib import Path

import secretgen
from conftest import fingerprint_of, scan_json
from hypothesis import given, settings
from hypothesis import strategies as st
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive

from secretscan.detect.pysource import documentation_spans
from secretscan.models import Documentation


def _value() -> str:
    """A name = value guess's kind of value: random letters and digits, as a person or a generator
    writes a password."""
    return secretgen.password().replace("&", "7").replace("+", "8").replace("=", "9")  # "token: a=b" reads as a: b


def _image(tmp_path: Path, files: dict[str, bytes]) -> Path:
    path = tmp_path / "img.tar"
    write_docker_archive(path, [ImageSpec(steps=[Layer([Entry(p, d) for p, d in files.items()])])])
    return path


def _by_fingerprint(report: dict) -> tuple[dict[str, dict], dict[str, dict]]:
    return (
        {f["fingerprint"]: f for f in report["findings"]},
        {k["fingerprint"]: k for k in report["known_test_keys"]},
    )


def test_values_in_docstrings_and_prose_comments_are_listed_as_documentation_examples(cli, tmp_path: Path) -> None:
    names = ("docstring", "prose", "method_doc", "examples", "comment", "commented_out", "also_in_config", "code")
    v = {n: _value() for n in names}
    token = secretgen.github_pat()
    source = (
        f'"""OAuth helpers.\n\nExample::\n\n    client.fetch(access_token="{v["docstring"]}")\n\n'
        f'Prints::\n\n    Session token: {v["prose"]}\n"""\n'
        "import os\n\n"
        f'# e.g. call it as login(password="{v["comment"]}")\n'
        f'# DB_PASSWORD = "{v["commented_out"]}"\n'
        f'DEFAULT_SECRET = "{v["code"]}"\n\n'
        "class Client:\n"
        f'    """Signs requests. ``Client(api_key="{v["method_doc"]}", token="{token}")``."""\n\n'
        "    def login(self, password):\n"
        f"        '''Log in; the password is e.g. password='{v['also_in_config']}'.'''\n"
        "        return password\n\n"
        f"EXAMPLES = r'''\n- name: create a user\n  mysql_user:\n    password: \"{v['examples']}\"\n'''\n"
    )
    module = tmp_path / "oauthhelpers.py"
    module.write_text(source)
    compiled = py_compile.compile(str(module), cfile=str(tmp_path / "oauthhelpers.cpython-311.pyc"), doraise=True)
    image = _image(
        tmp_path,
        {
            "opt/vendor/oauthhelpers.py": source.encode(),
            "opt/vendor/__pycache__/oauthhelpers.cpython-311.pyc": Path(compiled).read_bytes(),
            "etc/app/settings.env": f"LOGIN_PASSWORD={v['also_in_config']}\n".encode(),
        },
    )
    report = scan_json(cli, image)
    findings, listed = _by_fingerprint(report)
    for name in ("docstring", "prose", "method_doc", "examples", "comment"):
        entry = listed.get(fingerprint_of(v[name]))
        assert entry is not None and fingerprint_of(v[name]) not in findings, name
        assert "an example in documentation" in entry["source"], entry["source"]
        assert {loc["documentation"] for loc in entry["locations"] if loc["path"].endswith(".py")} <= {
            "docstring",
            "comment",
        }
    for name in ("docstring", "prose"):  # the compiled copy of a docstring is documentation too
        assert {loc["path"] for loc in listed[fingerprint_of(v[name])]["locations"]} == {
            "/opt/vendor/oauthhelpers.py",
            "/opt/vendor/__pycache__/oauthhelpers.cpython-311.pyc",
        }, name
    for name in ("commented_out", "code", "also_in_config"):
        assert fingerprint_of(v[name]) in findings, name
    in_config = findings[fingerprint_of(v["also_in_config"])]
    assert {loc["path"] for loc in in_config["locations"]} >= {"/etc/app/settings.env", "/opt/vendor/oauthhelpers.py"}
    assert fingerprint_of(token) in findings  # a provider's format is a credential in a docstring too


def test_type_and_module_names_are_not_values(cli, tmp_path: Path) -> None:
    value = _value()
    code = (
        "openapi_types = {\n"
        "    'secret': 'V1SecretVolumeSource',\n"
        "    'token': 'V1ServiceAccountTokenProjection',\n"
        "    'credentials': 'OAuth2Session',\n"
        "}\n"
        "SECRET_CLASS = '.models.V1Secret'\n"
        f"API_TOKEN = '{value}'\n"
    )
    report = scan_json(cli, _image(tmp_path, {"opt/client/models.py": code.encode()}), "--show-secrets")
    assert [f["secret"] for f in report["findings"]] == [value]


def test_passwords_that_read_as_words_stay_findings_in_config_files(cli, tmp_path: Path) -> None:
    word_like = "CorrectHorse" + str(secrets.randbelow(900) + 100) + "Battery"
    report = scan_json(
        cli, _image(tmp_path, {"app/config.yaml": f"db:\n  password: {word_like}\n".encode()}), "--show-secrets"
    )
    assert [f["secret"] for f in report["findings"]] == [word_like]


def _kinds(source: bytes) -> list[tuple[Documentation, bytes]]:
    spans = documentation_spans(source)
    return [(k, source[s:e]) for s, e, k in zip(spans.starts, spans.ends, spans.kinds, strict=True)]


def test_documentation_spans_follow_python_statements() -> None:
    source = (
        b'"""mod"""\n'
        b"x = call(\n    '''not a docstring''',\n)\n"
        b"y = 'nor this'  # but this comment is prose\n"
        b"# TOKEN = 'switched off code'\n"
        b"def f():\n    r'''raw doc \\''' still doc'''\n    return \"#not a comment\"\n"
        b'__doc__ = "assigned doc"\n'
        b"'unterminated\n"
    )
    assert _kinds(source) == [
        (Documentation.DOCSTRING, b'"""mod"""'),
        (Documentation.COMMENT, b"# but this comment is prose"),
        (Documentation.DOCSTRING, b"'''raw doc \\''' still doc'''"),
        (Documentation.DOCSTRING, b'"assigned doc"'),
        (Documentation.DOCSTRING, b"'unterminated"),
    ]


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")), deadline=None)
@given(st.binary(max_size=4000))
def test_documentation_spans_accept_any_bytes(data: bytes) -> None:
    spans = documentation_spans(data)
    assert list(spans.starts) == sorted(spans.starts)
    assert all(0 <= s < e <= len(data) for s, e in zip(spans.starts, spans.ends, strict=True))


def test_documentation_spans_stay_fast_on_pathological_files() -> None:
    """Runs of what keeps the scanner busiest, 2 MiB each; a quadratic scanner needs minutes for
    some (one logical line of strings, its text re-read per string: 1 s at a quarter MiB, growing
    with the square); this one needs a few seconds for all of them."""
    size = 2 << 20
    inputs = [
        b"'\\'" * (size // 3),
        b'"""' + b"\\" * size,
        b"([{" * (size // 3),
        b"#\n" * (size // 2),
        b"x = 'a' 'b' " * (size // 12),
        b"f('a', 'b', " * (size // 12),
        b" " * size + b"'",
        b"'" * size,
    ]
    began = time.monotonic()
    for data in inputs:
        documentation_spans(data)
    assert time.monotonic() - began < 60  # linear: seconds, even on a loaded machine; quadratic: hours

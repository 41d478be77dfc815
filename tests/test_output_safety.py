"""Output safety: what an image or a registry says cannot drive the user's terminal or forge report
lines, a report file never writes through a symlink, and the sweep database is private.

Terminal checks use ``unicodedata`` (not secretscan's own list) to decide what counts as a raw
control or invisible character.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
import secretgen
import servers
from conftest import REPO, fingerprint_of
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive, write_oci_layout
from registry_push import Pusher

from secretscan.api import scan_image
from secretscan.report import OutputFormat
from secretscan.sweep.store import Store
from secretscan.terminal import TerminalSafeFormatter, json_terminal_safe, terminal_safe

UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}
HANGUL_FILLERS = "\u115f\u1160\u3164\uffa0"

# file names an attacker chooses, and how a reader must see them
HOSTILE = {
    "title": ("app/\x1b]0;pwned\x07.env", "/app/\\x1b]0;pwned\\x07.env"),
    "clear": ("app/\x1b[2Jclear.env", "/app/\\x1b[2Jclear.env"),
    "forge": ("app/forge.env\nCRITICAL (1) FORGED-LINE", "/app/forge.env\\nCRITICAL (1) FORGED-LINE"),
    "c1": ("app/\x9b31mc1.env", "/app/\\x9b31mc1.env"),
    "bidi": ("app/\u202egnp.env", "/app/\\u202egnp.env"),
}
HOSTILE_STEP = "/bin/sh -c #(nop) COPY \x1b]0;step\x07 /app"


def raw_controls(text: str) -> list[str]:
    """Characters a terminal would act on or hide (line breaks between report lines excepted)."""
    return [c for c in text if c != "\n" and unicodedata.category(c) in UNSAFE_CATEGORIES]


def hostile_spec(seed: int) -> tuple[ImageSpec, dict[str, str]]:
    tokens = {key: secretgen.github_pat(seed + i) for i, key in enumerate(HOSTILE)}
    entries = [Entry(name, f"token: {tokens[key]}\n".encode()) for key, (name, _) in HOSTILE.items()]
    return ImageSpec([Layer(entries, HOSTILE_STEP)]), tokens


@pytest.fixture
def hostile_image(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    spec, tokens = hostile_spec(int.from_bytes(os.urandom(4), "big"))
    image = tmp_path / "hostile.tar"
    write_docker_archive(image, spec)
    return image, tokens


class Umask:
    def set(self, value: int) -> None:
        os.umask(value)


@pytest.fixture
def umask() -> Iterator[Umask]:
    """Set the process umask for one test (``umask.set(0o022)``, the default) and restore it afterwards."""
    old = os.umask(0o022)
    try:
        yield Umask()
    finally:
        os.umask(old)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


# ----------------------------------------------------------------------------- the escaping function


def test_terminal_safe_escapes_every_control_format_and_separator_character() -> None:
    unsafe = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) in UNSAFE_CATEGORIES]
    unsafe += list(HANGUL_FILLERS)
    assert len(unsafe) > 2000  # C0, C1, format characters, surrogates...
    escaped = terminal_safe("".join(unsafe))
    assert escaped.isascii() and escaped.isprintable()
    assert raw_controls(escaped) == []
    assert terminal_safe("\x1b") == "\\x1b"
    assert terminal_safe("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert terminal_safe("\x7f\x9b") == "\\x7f\\x9b"
    assert terminal_safe("\u202e\u2066\u200b\u2028\ufeff") == "\\u202e\\u2066\\u200b\\u2028\\ufeff"
    assert terminal_safe("\U000e0041\udcff") == "\\U000e0041\\udcff"


def test_terminal_safe_leaves_printable_text_alone() -> None:
    printable = "".join(
        chr(c)
        for c in range(0x110000)
        if unicodedata.category(chr(c))[0] in "LMNPS" or unicodedata.category(chr(c)) == "Zs"
        if chr(c) not in HANGUL_FILLERS
    )
    assert terminal_safe(printable) == printable
    text = "/srv/naïve/日本語/Ünïcödé — a path with spaces, \\x1b spelled out, and émoji 🔑"
    assert terminal_safe(text) == text


def test_json_terminal_safe_keeps_the_value_and_hides_nothing() -> None:
    value = {"path": "/app/\x1b]0;t\x07\x9b\u202e\u200b\U000e0041\udcff\x7f é 日本", "n": [1, "\n"]}
    document = json_terminal_safe(json.dumps(value, indent=2, ensure_ascii=False))
    assert json.loads(document) == value
    assert raw_controls(document) == []
    assert "é 日本" in document  # readable UTF-8 stays readable


def test_log_formatter_escapes_messages_and_keeps_traceback_lines() -> None:
    name = HOSTILE["forge"][0] + HOSTILE["title"][0]
    formatter = TerminalSafeFormatter("secretscan: %(message)s")
    try:
        raise ValueError(name)
    except ValueError:
        record = logging.LogRecord(
            "secretscan.scan", logging.ERROR, __file__, 1, "cannot read %s", (name,), sys.exc_info()
        )
    text = formatter.format(record)
    assert raw_controls(text) == []
    lines = text.split("\n")
    assert lines[0] == "secretscan: cannot read app/forge.env\\nCRITICAL (1) FORGED-LINEapp/\\x1b]0;pwned\\x07.env"
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: app/forge.env\\nCRITICAL (1) FORGED-LINEapp/\\x1b]0;pwned\\x07.env"


# ----------------------------------------------------------------------------- reports and messages


def test_text_report_escapes_hostile_file_names_and_build_steps(cli, hostile_image) -> None:
    image, tokens = hostile_image
    result = cli("scan", image, "-q")
    assert result.code == 1, result.err
    assert raw_controls(result.out) == [], sorted(set(raw_controls(result.out)))
    for _, shown in HOSTILE.values():
        assert f"layer 0: {shown}:1 (token)" in result.out
    assert "added by: /bin/sh -c #(nop) COPY \\x1b]0;step\\x07 /app" in result.out
    lines = result.out.splitlines()
    assert not [line for line in lines if line.startswith("CRITICAL")], "a file name forged a report line"
    assert [line for line in lines if "FORGED-LINE" in line] == [
        line for line in lines if line.startswith("    at ") and "forge.env\\n" in line
    ]
    # the JSON report carries the real names (JSON escapes them itself)
    report = cli("scan", image, "-q", "-f", "json")
    assert raw_controls(report.out) == []
    found = {f["fingerprint"]: {loc["path"] for loc in f["locations"]} for f in report.report["findings"]}
    assert found == {fingerprint_of(tokens[k]): {"/" + name} for k, (name, _) in HOSTILE.items()}


def test_coloured_text_report_keeps_only_its_own_colour_codes(hostile_image) -> None:
    image, _ = hostile_image
    text = OutputFormat.TEXT.render(scan_image(f"docker-archive:{image}"), color=True)
    assert "\x1b[31mHIGH (5)\x1b[0m" in text
    without_ours = text.replace("\x1b[31m", "").replace("\x1b[0m", "")
    assert raw_controls(without_ours) == []


def test_migration_plan_on_stdout_escapes_hostile_names(cli, hostile_image) -> None:
    image, _ = hostile_image
    result = cli("migrate", "plan", image, "-q")
    assert result.code == 0, result.err
    assert raw_controls(result.out) == []
    assert "  - " in result.out and HOSTILE["forge"][1] in result.out
    assert not [line for line in result.out.splitlines() if line.startswith("CRITICAL")]


def test_image_supplied_name_in_an_error_reaches_stderr_escaped(cli, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    write_oci_layout(layout, ImageSpec([Layer([Entry("a.txt", b"x")])]), ref_names=["evil\x1b]0;pwned\x07\nFORGED"])
    result = cli("scan", f"oci:{layout}:nosuch", "-q")
    assert result.code == 2
    assert raw_controls(result.err) == []
    assert result.err.count("\n") == 1 and result.err.startswith("secretscan: error: ")
    assert "(it has: evil\\x1b]0;pwned\\x07\\nFORGED)" in result.err


class _HostileRegistry(servers._Handler):
    """Answers like a registry, with an error message crafted to drive the terminal."""

    requests: list[str]

    def do_GET(self) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        if self.path == "/v2/":
            self.reply_json(200, {})
            return
        message = "manifest unknown \x1b]0;pwned\x07\x1b[2J\nsecretscan: error: FORGED \u202e"
        self.reply_json(404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": message}]})

    do_HEAD = do_GET


def test_registry_error_body_reaches_stderr_escaped(cli) -> None:
    with servers.serve_http(_HostileRegistry, requests=[]) as server:
        host = f"127.0.0.1:{server.server_address[1]}"
        result = cli("scan", f"docker://{host}/team/app:1", "-q")
        assert any("/manifests/" in path for path in server.requests)  # the error really came from it
    assert result.code == 2
    assert raw_controls(result.err) == []
    assert result.err.count("\n") == 1, result.err
    assert "manifest unknown \\x1b]0;pwned\\x07\\x1b[2J\\nsecretscan: error: FORGED \\u202e" in result.err


def test_log_lines_carrying_image_text_are_escaped(hostile_image, tmp_path: Path) -> None:
    """secretscan logs through the formatter the CLI installs; a path read from a real report is
    logged (as a warning and with a traceback) after a real ``-v`` run."""
    image, _ = hostile_image
    script = (
        "import json, logging, sys\n"
        "from secretscan.cli import main\n"
        "code = main(['scan', sys.argv[1], '-v', '-f', 'json', '-o', sys.argv[2]])\n"
        "paths = [l['path'] for f in json.load(open(sys.argv[2]))['findings'] for l in f['locations']]\n"
        "log = logging.getLogger('secretscan.scan')\n"
        "for p in paths:\n"
        "    log.warning('cannot read %s', p)\n"
        "try:\n"
        "    raise ValueError(paths[0])\n"
        "except ValueError:\n"
        "    log.exception('failed on %s', paths[0])\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(image), str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    assert raw_controls(done.stderr) == []
    for _, shown in HOSTILE.values():
        assert f"secretscan: cannot read {shown}\n" in done.stderr
    assert "\nTraceback (most recent call last):\n" in done.stderr
    assert not [line for line in done.stderr.splitlines() if line.startswith("CRITICAL")]


def test_progress_bar_shows_the_image_name_escaped(capsys) -> None:
    from secretscan.progress import TqdmProgress

    bar = TqdmProgress()
    bar.start_image("evil\x1b]0;pwned\x07:latest", 100, 1)
    bar.advance(50)
    bar.end_image()
    err = capsys.readouterr().err
    assert "evil\\x1b]0;pwned\\x07:latest" in err
    assert "\x1b]0;" not in err and "\x07" not in err


# ----------------------------------------------------------------------------- report files


def _tree(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize(
    "args",
    [
        ("scan", "{image}", "-o", "{out}", "--show-secrets"),
        ("scan", "{image}", "--also", "json={out}"),
        ("baseline", "{image}", "-o", "{out}"),
    ],
    ids=["scan -o", "scan --also", "baseline -o"],
)
def test_output_symlink_to_a_file_is_refused_and_its_target_untouched(cli, hostile_image, tmp_path, args) -> None:
    image, _ = hostile_image
    victim = tmp_path / "victim.conf"
    victim.write_text("precious\n")
    victim.chmod(0o640)
    out = tmp_path / "out" / "report.json"
    out.parent.mkdir()
    out.symlink_to(victim)
    result = cli(*(a.format(image=image, out=out) for a in args), "-q")
    assert result.code == 2
    assert (
        result.err
        == f"secretscan: error: {out}: is a symbolic link; not followed (remove it, or name the file it points to)\n"
    )
    assert result.out == ""
    assert victim.read_text() == "precious\n" and stat.S_IMODE(victim.stat().st_mode) == 0o640
    assert out.is_symlink() and _tree(out.parent) == ["report.json"]


def test_output_dangling_symlink_is_refused_and_nothing_is_created(cli, hostile_image, tmp_path) -> None:
    image, _ = hostile_image
    out = tmp_path / "report.txt"
    out.symlink_to(tmp_path / "planted")
    result = cli("scan", image, "-q", "-o", out)
    assert result.code == 2 and "is a symbolic link; not followed" in result.err
    assert not (tmp_path / "planted").exists()


def test_missing_output_directory_fails_before_anything_is_fetched(cli) -> None:
    with servers.serve_http(_HostileRegistry, requests=[]) as server:
        host = f"127.0.0.1:{server.server_address[1]}"
        typo = cli("scan", f"docker://{host}/team/app:1", "-q", "-o", "reprots/r.json")
        also = cli("scan", f"docker://{host}/team/app:1", "-q", "--also", "sarif=out/x.sarif")
        assert server.requests == [], "the registry was contacted before the output path was checked"
    assert typo.code == 2 and typo.err == "secretscan: error: reprots/r.json: directory reprots does not exist\n"
    assert also.code == 2 and also.err == "secretscan: error: out/x.sarif: directory out does not exist\n"


def test_output_under_a_file_or_onto_a_directory_fails_in_one_line(cli, hostile_image, tmp_path: Path) -> None:
    image, _ = hostile_image
    (tmp_path / "plain").write_text("x")
    (tmp_path / "adir").mkdir()
    under = cli("scan", image, "-q", "-o", tmp_path / "plain" / "r.json")
    onto = cli("scan", image, "-q", "-o", tmp_path / "adir")
    assert (
        under.code == 2
        and under.err == f"secretscan: error: {tmp_path}/plain/r.json: {tmp_path}/plain is not a directory\n"
    )
    assert onto.code == 2 and onto.err == f"secretscan: error: {tmp_path}/adir: is a directory; not overwritten\n"


@pytest.mark.parametrize(
    "mask, show, mode", [(0o022, False, 0o644), (0o022, True, 0o600), (0o027, False, 0o640), (0o000, True, 0o600)]
)
def test_report_file_modes(cli, hostile_image, tmp_path: Path, umask, mask: int, show: bool, mode: int) -> None:
    image, _ = hostile_image
    umask.set(mask)
    out, also = tmp_path / "r.json", tmp_path / "r.html"
    args = ["scan", image, "-q", "-f", "json", "-o", out, "--also", f"html={also}"] + (
        ["--show-secrets"] if show else []
    )
    assert cli(*args).code == 1
    assert stat.S_IMODE(out.stat().st_mode) == mode and stat.S_IMODE(also.stat().st_mode) == mode
    assert json.loads(out.read_text())["findings"]


def test_private_report_replaces_an_existing_file_without_writing_through_its_hard_links(
    cli, hostile_image, tmp_path: Path, umask
) -> None:
    image, tokens = hostile_image
    out, other = tmp_path / "r.json", tmp_path / "other-name"
    out.write_text("old\n")
    out.chmod(0o644)
    os.link(out, other)
    assert cli("scan", image, "-q", "-f", "json", "-o", out, "--show-secrets").code == 1
    assert {f["secret"] for f in json.loads(out.read_text())["findings"]} == set(tokens.values())
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert other.read_text() == "old\n", "the report was written through a hard link"
    assert _tree(tmp_path) == ["hostile.tar", "other-name", "r.json"], "a temporary file was left behind"


@pytest.mark.parametrize("via_symlink", [False, True], ids=["fifo", "symlink to fifo"])
def test_output_into_a_named_pipe(cli, hostile_image, tmp_path: Path, via_symlink: bool) -> None:
    image, _ = hostile_image
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    target = fifo
    if via_symlink:
        target = tmp_path / "link"
        target.symlink_to(fifo)
    got: dict[str, bytes] = {}
    reader = threading.Thread(target=lambda: got.update(data=fifo.read_bytes()), daemon=True)
    reader.start()
    try:
        result = cli("scan", image, "-q", "-f", "json", "-o", target)
    finally:
        reader.join(30)
        if reader.is_alive():  # nothing ever opened the pipe: let the reader go
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            reader.join(5)
    assert result.code == 1, result.err
    assert len(json.loads(got["data"])["findings"]) == len(HOSTILE)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and (not via_symlink or target.is_symlink())


def test_output_to_dev_null_leaves_the_device_alone(cli, hostile_image) -> None:
    image, _ = hostile_image
    before = os.lstat("/dev/null")
    assert cli("scan", image, "-q", "-o", "/dev/null").code == 1
    after = os.lstat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


def test_output_to_dev_stdout_goes_where_stdout_goes(hostile_image, tmp_path: Path) -> None:
    image, _ = hostile_image
    argv = [sys.executable, "-m", "secretscan", "scan", str(image), "-q", "-f", "json", "-o", "/dev/stdout"]
    piped = subprocess.run(argv, capture_output=True, env=_env(), timeout=300)
    assert piped.returncode == 1, piped.stderr
    assert len(json.loads(piped.stdout)["findings"]) == len(HOSTILE)
    # `>> file`: appended after what the file held, as the shell's redirection promises
    log = tmp_path / "log.txt"
    log.write_text("header\n")
    with log.open("a") as stdout:
        appended = subprocess.run(argv, stdout=stdout, stderr=subprocess.PIPE, env=_env(), timeout=300)
    assert appended.returncode == 1, appended.stderr
    head, _, body = log.read_text().partition("\n")
    assert head == "header" and len(json.loads(body)["findings"]) == len(HOSTILE)
    assert not log.is_symlink() and _tree(tmp_path) == ["hostile.tar", "log.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(hostile_image, tmp_path: Path) -> None:
    """The file size limit (RLIMIT_FSIZE) makes the report write fail half-way, as a full disk would."""
    image, _ = hostile_image
    out = tmp_path / "out" / "r.json"
    out.parent.mkdir()
    out.write_text("previous report\n")
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))\n"
        "from secretscan.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = [sys.executable, "-c", script, "scan", str(image), "-q", "-f", "json", "-o", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 2
    assert done.stderr == f"secretscan: error: {out}: cannot write (File too large)\n"
    assert out.read_text() == "previous report\n"
    assert _tree(out.parent) == ["r.json"]


def test_migration_record_is_private_and_a_symlinked_one_stops_before_vault_is_touched(
    cli, tmp_path: Path, monkeypatch, umask, vault
) -> None:
    image = tmp_path / "img.tar"
    token = secretgen.github_pat(int.from_bytes(os.urandom(4), "big"))
    write_docker_archive(
        image, [ImageSpec([Layer([Entry("app/.env", f"GITHUB_TOKEN={token}\n".encode())])], repo_tags=["team/app:1"])]
    )
    migrator = vault.token([vault.read_write()])
    monkeypatch.setenv("VAULT_TOKEN", migrator)
    victim = tmp_path / "victim.json"
    victim.write_text("[]\n")
    link = tmp_path / "record.json"
    link.symlink_to(victim)
    apply = ("migrate", "apply", image, "--to", f"{vault.mount}/secretscan")
    refused = cli(*apply, "--record", link, "-q")
    assert refused.code == 2 and refused.err.endswith(
        "is a symbolic link; not followed (remove it, or name the file it points to)\n"
    )
    assert vault.requests(migrator) == [], "Vault was contacted before the record path was checked"
    assert victim.read_text() == "[]\n"
    link.unlink()
    applied = cli(*apply, "--record", link, "-q")
    assert applied.code == 0, applied.err
    assert stat.S_IMODE(link.stat().st_mode) == 0o600
    assert [e["action"] for e in json.loads(link.read_text())] == ["created"]
    assert vault.requests(migrator), "the audit log does record this token's requests"


# ----------------------------------------------------------------------------- the sweep database


def _modes(db: Path) -> dict[str, int]:
    found = {}
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            found[suffix or "db"] = stat.S_IMODE(os.lstat(f"{db}{suffix}").st_mode)
    return found


@pytest.mark.servers
def test_sweep_database_wal_and_shm_are_private_from_the_start(registry_none, unique_repo: str, tmp_path: Path) -> None:
    """A real sweep, run under umask 022 and slowed by a proxy, watched while its database is open."""
    spec, _ = hostile_spec(int.from_bytes(os.urandom(4), "big"))
    Pusher(registry_none.host).image(unique_repo, "1", spec)
    db = tmp_path / "s.db"
    script = "import os, sys\nos.umask(0o022)\nfrom secretscan.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    seen: list[dict[str, int]] = []
    with servers.flaky_proxy(registry_none.host, fail_first=0, blob_delay=0.5) as proxy:
        argv = [sys.executable, "-c", script, "sweep", proxy.host, "--repo", unique_repo, "--db", str(db), "-q"]
        child = subprocess.Popen(argv, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while child.poll() is None and time.monotonic() < deadline:
            seen.append(_modes(db))
            time.sleep(0.01)
        _, err = child.communicate(timeout=60)
    assert child.returncode == 1, err.decode(errors="replace")
    assert any(set(m) == {"db", "-wal", "-shm"} for m in seen), "never saw the database with its -wal and -shm"
    assert {mode for m in seen for mode in m.values()} == {0o600}, seen
    assert _modes(db) == {"db": 0o600}


def test_store_makes_leftover_wal_and_shm_private(tmp_path: Path, umask) -> None:
    """A database, -wal and -shm left at 0644 (an older secretscan, or a killed run) are made 0600."""
    import sqlite3

    umask.set(0o022)
    db = tmp_path / "s.db"
    older = sqlite3.connect(db)  # kept open, so its -wal and -shm stay on disk
    older.execute("PRAGMA journal_mode=WAL")
    older.execute("CREATE TABLE leftover (x)")
    older.execute("INSERT INTO leftover VALUES (1)")
    older.commit()
    assert _modes(db) == {"db": 0o644, "-wal": 0o644, "-shm": 0o644}
    store = Store(db)
    try:
        assert _modes(db) == {"db": 0o600, "-wal": 0o600, "-shm": 0o600}
    finally:
        store.close()
        older.close()


def test_sweep_database_symlink_is_refused(cli, tmp_path: Path) -> None:
    real = tmp_path / "real.db"
    Store(real).close()
    link = tmp_path / "link.db"
    link.symlink_to(real)
    result = cli("report", "--db", link)
    assert result.code == 2
    assert (
        result.err == f"secretscan: error: {link}: is a symbolic link; not followed (give --db the file it points to)\n"
    )

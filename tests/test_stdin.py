"""``docker save IMAGE | secretscan scan -``: an archive piped into the real CLI (a subprocess, its
standard input a pipe or a file) gives the findings a scan of the same file by path gives; what is
not an archive, or an archive cut short, gets one line saying so and the exit code a user can act on."""

from __future__ import annotations

import gzip
import io
import json
import os
import pty
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import secretgen
from conftest import REPO, fingerprint_of
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive, write_oci_archive

DEMO = REPO / "fixtures" / "demo-image.tar"
HOLDS = (
    "standard input takes a docker save archive, plain or compressed (docker save IMAGE | gzip), or an OCI layout tar"
)


def secretscan(tmp_path: Path, *args: str, stdin: bytes | Path | int | None = None) -> subprocess.CompletedProcess[str]:
    """``secretscan ARGS`` as a user runs it, from an empty directory, ``stdin`` piped in (bytes),
    redirected from a file (a path) or given as a descriptor; temporary files would go to a
    directory of their own, which the caller can check stays empty."""
    work = tmp_path / "work"
    spool = tmp_path / "tmpdir"
    work.mkdir(exist_ok=True)
    spool.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECRETSCAN_")}
    env.update(PYTHONPATH=str(REPO), TMPDIR=str(spool))
    argv = [sys.executable, "-m", "secretscan", *args]
    if isinstance(stdin, Path):
        with stdin.open("rb") as f:
            return subprocess.run(argv, stdin=f, capture_output=True, text=True, cwd=work, env=env, timeout=300)
    if isinstance(stdin, int):
        return subprocess.run(argv, stdin=stdin, capture_output=True, text=True, cwd=work, env=env, timeout=300)
    data = b"" if stdin is None else stdin
    result = subprocess.run(argv, input=data, capture_output=True, cwd=work, env=env, timeout=300)
    return subprocess.CompletedProcess(argv, result.returncode, result.stdout.decode(), result.stderr.decode())


def findings(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What a user compares between two scans of one image: each secret's rule and fingerprint,
    and where it was seen (image, layer, path, line, exposure)."""
    keys = ("image", "layer_index", "path", "line", "exposure", "removed_in_layer", "created_by")
    return sorted(
        (f["rule_id"], f["fingerprint"], tuple(sorted(tuple(loc[k] for k in keys) for loc in f["locations"])))
        for f in report["findings"]
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def _token() -> str:
    return secretgen.github_pat(int.from_bytes(os.urandom(4), "big"))


# ----------------------------------------------------------------------------- the same findings


def test_piped_demo_image_gives_the_findings_of_the_file(tmp_path: Path) -> None:
    by_path = secretscan(tmp_path, "scan", str(DEMO), "-f", "json", "-q")
    piped = secretscan(tmp_path, "scan", "-", "-f", "json", "-q", stdin=DEMO.read_bytes())
    redirected = secretscan(tmp_path, "scan", "docker-archive:-", "-f", "json", "-q", stdin=DEMO)
    assert by_path.returncode == piped.returncode == redirected.returncode == 1, piped.stderr
    expected = findings(json.loads(by_path.stdout))
    assert len(expected) >= 5
    assert findings(json.loads(piped.stdout)) == expected
    assert findings(json.loads(redirected.stdout)) == expected
    report = json.loads(piped.stdout)
    assert report["target"] == "stdin" and report["complete"]
    assert [i["name"] for i in report["images"]] == ["secretscan/demo:1.0"]  # from the archive's RepoTags
    assert list((tmp_path / "tmpdir").iterdir()) == [], "the stream was spooled to a temporary file"


def test_gzip_compressed_stream_gives_the_same_findings(tmp_path: Path) -> None:
    """``docker save IMAGE | gzip | secretscan scan -``."""
    by_path = secretscan(tmp_path, "scan", str(DEMO), "-f", "json", "-q")
    piped = secretscan(tmp_path, "scan", "-", "-f", "json", "-q", stdin=gzip.compress(DEMO.read_bytes()))
    assert piped.returncode == 1, piped.stderr
    assert findings(json.loads(piped.stdout)) == findings(json.loads(by_path.stdout))


@pytest.mark.parametrize("layout", ["docker25", "oci-archive"])
def test_docker25_save_and_oci_layout_tar_from_stdin(tmp_path: Path, layout: str) -> None:
    """Docker 25+ saves an OCI layout plus manifest.json; an oci-archive has only the layout's
    index: both are read from the stream and attributed as a scan of the file attributes them."""
    token, removed = _token(), secretgen.slack_bot_token(int.from_bytes(os.urandom(4), "big"))
    spec = ImageSpec(
        [
            Layer([Entry("app/token.txt", f"token: {token}\n".encode())], created_by="COPY token.txt /app/"),
            Layer([Entry("app/slack.txt", f"slack {removed}\n".encode())], compression="zstd"),
            Layer([Entry("app/slack.txt", kind="whiteout")], created_by="RUN rm /app/slack.txt"),
        ],
        repo_tags=["t/app:1"],
    )
    path = tmp_path / "image.tar"
    if layout == "docker25":
        write_docker_archive(path, [spec], style="oci")
    else:
        write_oci_archive(path, [spec], ref_names=["1"])
    by_path = json.loads(secretscan(tmp_path, "scan", str(path), "-f", "json", "-q").stdout)
    piped = secretscan(tmp_path, "scan", "-", "-f", "json", "-q", stdin=path.read_bytes())
    assert piped.returncode == 1, piped.stderr
    report = json.loads(piped.stdout)
    assert findings(report) == findings(by_path)
    where = {f["fingerprint"]: f["locations"][0] for f in report["findings"]}
    assert where[fingerprint_of(removed)]["exposure"] == "removed"
    assert where[fingerprint_of(token)]["created_by"] == "COPY token.txt /app/"


def test_untagged_image_is_named_stdin(tmp_path: Path) -> None:
    token = _token()
    path = tmp_path / "untagged.tar"
    write_docker_archive(path, [ImageSpec([Layer([Entry("etc/app.env", f"TOKEN={token}\n".encode())])], repo_tags=[])])
    piped = secretscan(tmp_path, "scan", "-", "-f", "json", "-q", stdin=path.read_bytes())
    assert piped.returncode == 1, piped.stderr
    report = json.loads(piped.stdout)
    assert [i["name"] for i in report["images"]] == ["stdin"]
    assert [loc["image"] for f in report["findings"] for loc in f["locations"]] == ["stdin"]


# ----------------------------------------------------------------------------- cut short


def _three_layers(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A docker-archive with a big layer: a token, 100 KB of noise, a token, 300 KB of noise."""
    secrets = {"first": _token(), "big": _token(), "deep": _token(), "last": _token()}
    spec = ImageSpec(
        [
            Layer([Entry("app/first.txt", f"token: {secrets['first']}\n".encode())]),
            Layer(
                [
                    Entry("app/big.txt", f"token: {secrets['big']}\n".encode()),
                    Entry("app/noise.bin", os.urandom(100_000)),
                    Entry("app/deep.txt", f"token: {secrets['deep']}\n".encode()),
                    Entry("app/more-noise.bin", os.urandom(300_000)),
                ],
                compression="none",
            ),
            Layer([Entry("app/last.txt", f"token: {secrets['last']}\n".encode())]),
        ],
        repo_tags=["t/cut:1"],
    )
    path = tmp_path / "three.tar"
    write_docker_archive(path, [spec], style="legacy")
    return path, secrets


def _inside_the_big_layer(path: Path) -> tuple[int, int]:
    """Where to cut the archive: the middle of its biggest layer; and how many layers start before."""
    with tarfile.open(path) as tar:
        layers = [m for m in tar.getmembers() if m.name.endswith("/layer.tar")]
    big = max(layers, key=lambda m: m.size)
    return big.offset_data + big.size // 2, sum(1 for m in layers if m.offset <= big.offset)


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_stream_cut_inside_a_layer_keeps_what_was_read(tmp_path: Path, compressed: bool) -> None:
    """The manifest comes last in a save stream, so a cut loses it: the layers read are reported
    (in the order they came), with one error line, and the run exits 2 as for any damaged archive."""
    path, secrets = _three_layers(tmp_path)
    cut_at, layers_read = _inside_the_big_layer(path)
    data = path.read_bytes()[:cut_at]
    if compressed:
        whole = gzip.compress(path.read_bytes(), mtime=0)
        data = whole[: len(gzip.compress(data, mtime=0)) - 64]  # the gzip stream ends inside the big layer
        why = "EOFError: compressed stream ends early (truncated gzip)"
    else:
        why = "ReadError: unexpected end of data"
    result = secretscan(tmp_path, "scan", "-", "-f", "json", stdin=data)
    assert result.returncode == 2
    assert one_line(result) == (
        "secretscan: error: stdin: the stream breaks off inside its last layer, whose files before the break were "
        f"scanned ({why}), before its manifest.json (docker save writes it last): the {layers_read} layer(s) read "
        "are reported in the order they came, without build steps, and without what later layers remove"
    )
    report = json.loads(result.stdout)
    assert not report["complete"]
    assert [(i["name"], i["layers"]) for i in report["images"]] == [("stdin", layers_read)]
    found = {f["fingerprint"]: f["locations"][0]["path"] for f in report["findings"]}
    assert found[fingerprint_of(secrets["big"])] == "/app/big.txt"  # in front of the break, in the cut layer
    assert found[fingerprint_of(secrets["deep"])] == "/app/deep.txt"  # 100 KB in, still in front of it
    others = {f"/app/{k}.txt" for k in ("first", "last") if fingerprint_of(secrets[k]) in found}
    assert set(found.values()) == {"/app/big.txt", "/app/deep.txt"} | others and len(others) == layers_read - 1


def test_stream_cut_before_any_layer_is_one_error(tmp_path: Path) -> None:
    data = DEMO.read_bytes()[:1200]  # inside the first member after the first directory entry
    result = secretscan(tmp_path, "scan", "-", stdin=data)
    assert result.returncode == 2 and result.stdout == ""
    assert one_line(result) == (
        "secretscan: error: stdin: the stream breaks off (ReadError: unexpected end of data), before any layer was read"
    )


# ----------------------------------------------------------------------------- not an archive


def test_empty_stdin(tmp_path: Path) -> None:
    result = secretscan(tmp_path, "scan", "-", stdin=b"")
    assert result.returncode == 2 and result.stdout == ""
    assert one_line(result) == (
        "secretscan: error: standard input is empty; pipe an archive: docker save IMAGE | secretscan scan -"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"Error response from daemon: No such image: app:1\n" * 20, f"stdin: not a tar archive; {HOLDS}"),
        (gzip.compress(b"hello\n" * 200), f"stdin: not a tar archive (gzip-compressed); {HOLDS}"),
        (
            b"\x1f\x8b" + b"garbage" * 100,
            f"stdin: not a tar archive (it starts as gzip data that does not decompress); {HOLDS}",
        ),
        (b"\0" * 10240, f"stdin: an empty tar archive: not an image; {HOLDS}"),
    ],
    ids=["text", "gzip-text", "broken-gzip", "empty-tar"],
)
def test_what_is_not_an_archive(tmp_path: Path, data: bytes, message: str) -> None:
    result = secretscan(tmp_path, "scan", "-", stdin=data)
    assert result.returncode == 2 and result.stdout == ""
    assert one_line(result) == f"secretscan: error: {message}"


def test_a_tar_that_is_not_an_image(tmp_path: Path) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("notes.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"hello\n"))
    result = secretscan(tmp_path, "scan", "-", stdin=out.getvalue())
    assert result.returncode == 2 and result.stdout == ""
    assert one_line(result) == (
        "secretscan: error: stdin: the archive ends without manifest.json (docker save) or oci-layout and "
        "index.json (an OCI layout): not an image, or cut short"
    )


def test_a_terminal_is_refused_with_a_hint(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    try:
        result = secretscan(tmp_path, "scan", "-", stdin=follower)
    finally:
        os.close(leader)
        os.close(follower)
    assert result.returncode == 2 and result.stdout == ""
    assert one_line(result) == (
        "secretscan: standard input is a terminal; pipe an archive: docker save IMAGE | secretscan scan -"
    )


@pytest.mark.parametrize(
    "images", [["-", "-"], ["-", "app:1"], ["app:1", "docker-archive:-"]], ids=["twice", "then-a-name", "after-a-name"]
)
def test_stdin_given_twice_or_with_another_image(tmp_path: Path, images: list[str]) -> None:
    result = secretscan(tmp_path, "scan", *images, stdin=DEMO.read_bytes())
    assert result.returncode == 2 and result.stdout == ""
    assert one_line(result) == (
        f"secretscan: error: one image per run, and standard input (-) can be read once: got {' '.join(images)}"
    )


def test_password_stdin_cannot_share_standard_input(tmp_path: Path) -> None:
    result = secretscan(tmp_path, "scan", "-", "--username", "ci", "--password-stdin", stdin=DEMO.read_bytes())
    assert result.returncode == 2 and result.stdout == ""
    assert one_line(result) == (
        "secretscan: error: --password-stdin and - both read standard input (an archive needs no registry password)"
    )


# ----------------------------------------------------------------------------- a real docker save


@pytest.mark.servers
def test_real_docker_save_piped_in(tmp_path: Path, docker_daemon: Any) -> None:
    import servers

    servers.docker_load(docker_daemon, DEMO)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = str(docker_daemon.config_dir)
    save = subprocess.Popen(
        [docker_daemon.cli, "-H", docker_daemon.host, "save", "secretscan/demo:1.0"], stdout=subprocess.PIPE, env=env
    )
    assert save.stdout is not None
    try:
        piped = secretscan(tmp_path, "scan", "-", "-f", "json", "-q", stdin=save.stdout.fileno())
    finally:
        save.stdout.close()
        assert save.wait(timeout=120) == 0
    assert piped.returncode == 1, piped.stderr
    by_path = secretscan(tmp_path, "scan", str(DEMO), "-f", "json", "-q")
    assert findings(json.loads(piped.stdout)) == findings(json.loads(by_path.stdout)) != []

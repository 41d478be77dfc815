"""Archives inside layers (jar/zip/whl/apk, tar, gzip/bzip2/xz/zstd), opened in memory, recursively,
within the configured limits; what a limit or damage stops is listed in the report's ``skipped``.

Real images built in tmp_path, the real CLI, its JSON report. Secrets are generated at test time.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import secretgen as gen
import zstandard
from conftest import CliResult
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive, xz_declaring_dictionary, zip_bytes

GITHUB = "github.personal-access-token"
SLACK = "slack.bot-token"

Cli = Callable[..., CliResult]


# --------------------------------------------------------------------------- archive builders


def tar_bytes(files: dict[str, bytes], end: bool = True) -> bytes:
    """A plain tar of ``files``; ``end=False`` leaves off the end-of-archive blocks (apk segments)."""
    out = io.BytesIO()
    for name, data in files.items():
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        out.write(info.tobuf(tarfile.USTAR_FORMAT))
        out.write(data + b"\0" * (-len(data) % tarfile.BLOCKSIZE))
    if end:
        out.write(b"\0" * (2 * tarfile.BLOCKSIZE))
    return out.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def apk_bytes(files: dict[str, bytes]) -> bytes:
    """Alpine's package format: three gzip streams (signature, control, data) whose tars run on as one."""
    signature = tar_bytes({".SIGN.RSA.builder-5f2a.rsa.pub": random.Random(3).randbytes(256)}, end=False)
    control = tar_bytes({".PKGINFO": b"pkgname = tool\npkgver = 1.0-r0\narch = x86_64\n"}, end=False)
    return gz(signature) + gz(control) + gz(tar_bytes(files))


def properties(secret: str) -> bytes:
    return f"# application settings\nserver.port=8080\nscm.remote.github={secret}\nlogging.level=info\n".encode()


def image(tmp_path: Path, files: dict[str, bytes], name: str = "image.tar") -> Path:
    entries = [Entry(path, data) for path, data in files.items()]
    path = tmp_path / name
    write_docker_archive(path, ImageSpec([Layer(entries, created_by="COPY . /")]))
    return path


def limits_config(tmp_path: Path, **limits: int) -> Path:
    """A secretscan.yaml in its own folder (not the working directory), for --config."""
    folder = tmp_path / "cfg"
    folder.mkdir(exist_ok=True)
    path = folder / "secretscan.yaml"
    path.write_text("limits:\n" + "".join(f"  {k}: {v}\n" for k, v in limits.items()))
    return path


def run(cli: Cli, img: Path, *extra: str | Path) -> tuple[int, dict[str, Any]]:
    result = cli("scan", img, "--format", "json", "--quiet", "--show-secrets", *extra)
    assert "Traceback" not in result.err
    assert result.code in (0, 1, 3), result.err
    report = result.report
    assert report["errors"] == []
    return result.code, report


def locations_of(report: dict[str, Any], secret: str) -> list[dict[str, Any]]:
    found = [f for f in report["findings"] if f.get("secret") == secret]
    assert len(found) == 1, report["findings"]
    return found[0]["locations"]


def skipped_for(report: dict[str, Any], path: str) -> list[dict[str, str]]:
    """Skip entries about exactly ``path`` (their ``what`` is ``<image> layer N: <path>``)."""
    return [s for s in report["skipped"] if s["what"].endswith(": " + path)]


# --------------------------------------------------------------------------- formats


def _cases(secret: str) -> list[tuple[str, str, bytes, str]]:
    """(id, file path in the image, file bytes, expected location path). The secret is on line 3."""
    props = properties(secret)
    return [
        (
            "jar",
            "app/lib/x.jar",
            zip_bytes(
                {
                    "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n",
                    "config/app.properties": props,
                    "com/example/App.class": b"\xca\xfe\xba\xbe" + bytes(60),
                }
            ),
            "/app/lib/x.jar!/config/app.properties",
        ),
        (
            "tar.gz-in-zip",
            "app/bundle.zip",
            zip_bytes({"README": b"bundle\n", "vendor/deps.tar.gz": gz(tar_bytes({"etc/deps.conf": props}))}),
            "/app/bundle.zip!/vendor/deps.tar.gz!/etc/deps.conf",
        ),
        (
            "zip-in-tar.gz",
            "opt/release.tar.gz",
            gz(
                tar_bytes(
                    {"release/VERSION": b"1.0\n", "release/lib/plugin.zip": zip_bytes({"plugin/settings.ini": props})}
                )
            ),
            "/opt/release.tar.gz!/release/lib/plugin.zip!/plugin/settings.ini",
        ),
        ("tgz", "opt/pkg.tgz", gz(tar_bytes({"pkg/conf.txt": props})), "/opt/pkg.tgz!/pkg/conf.txt"),
        (
            "tar.bz2",
            "opt/pkg.tar.bz2",
            bz2.compress(tar_bytes({"pkg/conf.txt": props})),
            "/opt/pkg.tar.bz2!/pkg/conf.txt",
        ),
        (
            "tar.xz",
            "opt/pkg.tar.xz",
            lzma.compress(tar_bytes({"pkg/conf.txt": props})),
            "/opt/pkg.tar.xz!/pkg/conf.txt",
        ),
        (
            "tar.zst",
            "opt/pkg.tar.zst",
            zstandard.ZstdCompressor().compress(tar_bytes({"pkg/conf.txt": props})),
            "/opt/pkg.tar.zst!/pkg/conf.txt",
        ),
        ("tar", "opt/pkg.tar", tar_bytes({"pkg/conf.txt": props}), "/opt/pkg.tar!/pkg/conf.txt"),
        ("gz", "var/backups/app.properties.gz", gz(props), "/var/backups/app.properties.gz!/app.properties"),
        (
            "apk",
            "var/cache/apk/tool-1.0-r0.apk",
            apk_bytes({"etc/tool/tool.conf": props}),
            "/var/cache/apk/tool-1.0-r0.apk!/etc/tool/tool.conf",
        ),
        (
            "whl",
            "root/.cache/pip/wheels/tool-1.0-py3-none-any.whl",
            zip_bytes(
                {
                    "tool/__init__.py": b"",
                    "tool/settings.properties": props,
                    "tool-1.0.dist-info/METADATA": b"Name: tool\nVersion: 1.0\n",
                }
            ),
            "/root/.cache/pip/wheels/tool-1.0-py3-none-any.whl!/tool/settings.properties",
        ),
    ]


CASE_IDS = [c[0] for c in _cases("x")]


@pytest.mark.parametrize("case", CASE_IDS)
def test_nested_archive_member_is_scanned(cli: Cli, tmp_path: Path, case: str) -> None:
    secret = gen.github_pat()
    _, path, data, expected = next(c for c in _cases(secret) if c[0] == case)
    assert secret.encode() not in data or case == "tar", "the secret must only be readable by opening the archive"
    code, report = run(cli, image(tmp_path, {path: data, "etc/hostname": b"box\n"}))
    assert code == 1
    found = [f for f in report["findings"] if f["secret"] == secret]
    assert len(found) == 1
    assert found[0]["rule_id"] == GITHUB
    [loc] = found[0]["locations"]
    assert loc["path"] == expected
    assert loc["line"] == 3
    assert (loc["layer_index"], loc["exposure"]) == (0, "final")
    assert report["skipped"] == []


def test_nested_member_shares_the_archives_fate(cli: Cli, tmp_path: Path) -> None:
    secret = gen.github_pat()
    jar = zip_bytes({"config/app.properties": properties(secret)})
    img = tmp_path / "image.tar"
    write_docker_archive(
        img,
        ImageSpec(
            [
                Layer([Entry("app/lib/x.jar", jar)], created_by="COPY x.jar /app/lib/"),
                Layer([Entry("app/lib/x.jar", kind="whiteout")], created_by="RUN rm /app/lib/x.jar"),
            ]
        ),
    )
    _, report = run(cli, img)
    [loc] = locations_of(report, secret)
    assert loc["path"] == "/app/lib/x.jar!/config/app.properties"
    assert (loc["exposure"], loc["removed_in_layer"], loc["removed_how"]) == ("removed", 1, "deleted")
    assert loc["created_by"] == "COPY x.jar /app/lib/"


def _stored_gzip_of_size(size: int, seed: int) -> tuple[bytes, bytes]:
    """(plain, member): a gzip member of exactly ``size`` bytes (stored deflate blocks of random data)."""
    rng = random.Random(seed)
    n = size - 23
    while True:
        plain = rng.randbytes(n)
        member = gzip.compress(plain, compresslevel=0, mtime=0)
        if len(member) == size:
            return plain, member
        n += size - len(member)


@pytest.mark.parametrize("first_member", [512, 1024 * 1024], ids=["512B", "1MiB"])
def test_concatenated_gzip_members(cli: Cli, tmp_path: Path, first_member: int) -> None:
    """Multi-member gzip (apk, pigz --independent, eStargz): a member ending exactly where a read
    ends must not end the stream."""
    secret = gen.github_pat()
    plain, first = _stored_gzip_of_size(first_member, seed=first_member)
    assert len(first) == first_member
    second = f"\n# second member\ntoken {secret}\n".encode()
    _, report = run(cli, image(tmp_path, {"var/log/app.log.gz": first + gz(second)}))
    [loc] = locations_of(report, secret)
    assert loc["path"] == "/var/log/app.log.gz!/app.log"
    assert loc["line"] == plain.count(b"\n") + 3
    assert report["skipped"] == []


@pytest.mark.parametrize("kind", ["bzip2", "xz"])
def test_multi_stream_bzip2_and_xz(cli: Cli, tmp_path: Path, kind: str) -> None:
    """pbzip2/lbzip2 and parallel xz write one compressed stream per block: all of them are read."""
    secret = gen.github_pat()
    tar = tar_bytes({"pkg/blob.bin": random.Random(6).randbytes(30_000), "pkg/conf.txt": properties(secret)})
    compress = bz2.compress if kind == "bzip2" else lzma.compress
    data = compress(tar[:20_000]) + compress(tar[20_000:])
    name = "opt/pkg.tar.bz2" if kind == "bzip2" else "opt/pkg.tar.xz"
    _, report = run(cli, image(tmp_path, {name: data}))
    [loc] = locations_of(report, secret)
    assert (loc["path"], loc["line"]) == (f"/{name}!/pkg/conf.txt", 3)
    assert report["skipped"] == []


def test_a_zip_member_without_a_name_costs_nothing(cli: Cli, tmp_path: Path) -> None:
    """A jar whose first entry has an empty name (zipfile's ``is_dir`` raises on it): the other
    entries are still opened and scanned."""
    secret = gen.github_pat()
    jar = io.BytesIO()
    with zipfile.ZipFile(jar, "w") as z:
        z.writestr(zipfile.ZipInfo(""), b"x")
        z.writestr("config/app.properties", f"github.token={secret}\n")
    _, report = run(cli, image(tmp_path, {"app/lib/app.jar": jar.getvalue()}))
    [loc] = locations_of(report, secret)
    assert loc["path"] == "/app/lib/app.jar!/config/app.properties"


# --------------------------------------------------------------------------- limits


def test_depth_limit(cli: Cli, tmp_path: Path) -> None:
    secret = gen.github_pat()
    deepest = gz(tar_bytes({"secret.txt": f"token {secret}\n".encode()}))
    outer = zip_bytes({"level1.zip": zip_bytes({"level2.tar.gz": deepest})})
    img = image(tmp_path, {"app/outer.zip": outer})

    # within the default depth, the secret is found three archives down
    _, report = run(cli, img)
    [loc] = locations_of(report, secret)
    assert loc["path"] == "/app/outer.zip!/level1.zip!/level2.tar.gz!/secret.txt"

    config = limits_config(tmp_path, max_nested_depth=2)
    code, report = run(cli, img, "--config", config, "--fail-on-incomplete")
    assert report["findings"] == []
    assert code == 3
    assert report["complete"] is False
    [skip] = skipped_for(report, "/app/outer.zip!/level1.zip!/level2.tar.gz")
    assert "deeper than 2" in skip["reason"]


def test_entry_count_limit(cli: Cli, tmp_path: Path) -> None:
    early, late, elsewhere, tar_late = gen.github_pat(), gen.github_pat(), gen.slack_bot_token(), gen.github_pat()
    members = {f"lib/part{i:02d}.txt": f"part {i}\n".encode() for i in range(12)}
    members["lib/part00.txt"] = f"token {early}\n".encode()
    members["lib/part11.txt"] = f"token {late}\n".encode()
    tar_members = {f"d/f{i:02d}.txt": b"x\n" for i in range(11)} | {"d/last.txt": f"token {tar_late}\n".encode()}
    img = image(
        tmp_path,
        {
            "app/many.zip": zip_bytes(members),
            "app/many.tar.gz": gz(tar_bytes(tar_members)),
            "app/other.txt": f"slack {elsewhere}\n".encode(),
        },
    )
    config = limits_config(tmp_path, max_nested_entries=5)
    code, report = run(cli, img, "--config", config, "--fail-on-incomplete")
    assert code == 1  # findings outrank incompleteness
    [loc] = locations_of(report, early)
    assert loc["path"] == "/app/many.zip!/lib/part00.txt"
    [loc] = locations_of(report, elsewhere)
    assert loc["path"] == "/app/other.txt"
    assert not [f for f in report["findings"] if f["secret"] in (late, tar_late)]
    [skip] = skipped_for(report, "/app/many.zip")
    assert "max_nested_entries" in skip["reason"]
    [skip] = skipped_for(report, "/app/many.tar.gz")
    assert "max_nested_entries" in skip["reason"]


def test_zip_size_limit(cli: Cli, tmp_path: Path) -> None:
    inside, elsewhere = gen.github_pat(), gen.slack_bot_token()
    big = zip_bytes({"blob.bin": random.Random(5).randbytes(200_000), "conf.txt": f"token {inside}\n".encode()})
    assert len(big) > 65536 and inside.encode() not in big
    img = image(tmp_path, {"app/big.jar": big, "app/other.txt": f"slack {elsewhere}\n".encode()})
    code, report = run(cli, img, "--config", limits_config(tmp_path, max_nested_bytes=65536), "--fail-on-incomplete")
    assert code == 1
    [loc] = locations_of(report, elsewhere)
    assert loc["path"] == "/app/other.txt"
    [skip] = skipped_for(report, "/app/big.jar")
    assert "max_nested_bytes" in skip["reason"]


def test_gzip_bomb_is_bounded(cli: Cli, tmp_path: Path) -> None:
    elsewhere = gen.github_pat()
    bomb = gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9, mtime=0)
    assert len(bomb) < 200_000
    tar_bomb = gz(tar_bytes({"zeros.bin": bytes(8 * 1024 * 1024)}))
    img = image(
        tmp_path, {"app/bomb.gz": bomb, "app/bomb.tar.gz": tar_bomb, "app/z.txt": f"token {elsewhere}\n".encode()}
    )
    config = limits_config(tmp_path, max_nested_uncompressed_bytes=1024 * 1024)
    code, report = run(cli, img, "--config", config, "--fail-on-incomplete")
    assert code == 1
    [loc] = locations_of(report, elsewhere)
    assert loc["path"] == "/app/z.txt"
    for path in ("/app/bomb.gz", "/app/bomb.tar.gz"):
        [skip] = skipped_for(report, path)
        assert "1048576 bytes uncompressed" in skip["reason"], skip
    assert report["images"][0]["bytes_scanned"] < 20 * 1024 * 1024


# --------------------------------------------------------------------------- damage


def test_truncated_zip(cli: Cli, tmp_path: Path) -> None:
    inside, elsewhere = gen.github_pat(), gen.slack_bot_token()
    jar = zip_bytes({"a/blob.bin": random.Random(9).randbytes(50_000), "a/conf.txt": f"token {inside}\n".encode()})
    img = image(tmp_path, {"app/broken.jar": jar[: len(jar) // 2], "app/zz.txt": f"slack {elsewhere}\n".encode()})
    code, report = run(cli, img, "--fail-on-incomplete")
    assert code == 1
    [loc] = locations_of(report, elsewhere)
    assert loc["path"] == "/app/zz.txt"
    [skip] = skipped_for(report, "/app/broken.jar")
    assert "unreadable" in skip["reason"] or "corrupt" in skip["reason"], skip


def test_zip_with_a_corrupt_member(cli: Cli, tmp_path: Path) -> None:
    """One damaged member must not hide the other members of the archive."""
    before, after, elsewhere = gen.github_pat(), gen.github_pat(), gen.slack_bot_token()
    damaged = f"token {gen.github_pat()}\n".encode() + random.Random(2).randbytes(5000)
    jar = bytearray(
        zip_bytes(
            {
                "a/first.txt": f"token {before}\n".encode(),
                "b/damaged.bin": damaged,
                "c/last.txt": f"token {after}\n".encode(),
            }
        )
    )
    start = jar.index(b"b/damaged.bin") + len("b/damaged.bin") + 100  # inside its deflated data
    jar[start : start + 64] = bytes(64)
    img = image(tmp_path, {"app/mixed.jar": bytes(jar), "app/zz.txt": f"slack {elsewhere}\n".encode()})
    _, report = run(cli, img)
    for secret, path in (
        (before, "/app/mixed.jar!/a/first.txt"),
        (after, "/app/mixed.jar!/c/last.txt"),
        (elsewhere, "/app/zz.txt"),
    ):
        [loc] = locations_of(report, secret)
        assert loc["path"] == path
    skips = [s for s in report["skipped"] if "/app/mixed.jar" in s["what"]]
    assert len(skips) == 1 and "b/damaged.bin" in skips[0]["what"] + skips[0]["reason"], skips


def test_truncated_nested_tar_gz(cli: Cli, tmp_path: Path) -> None:
    first, elsewhere = gen.github_pat(), gen.slack_bot_token()
    archive = gz(
        tar_bytes({"rel/a.txt": f"token {first}\n".encode(), "rel/blob.bin": random.Random(4).randbytes(300_000)})
    )
    cut = archive[: len(archive) * 2 // 3]
    img = image(tmp_path, {"opt/release.tar.gz": cut, "opt/zz.txt": f"slack {elsewhere}\n".encode()})
    code, report = run(cli, img, "--fail-on-incomplete")
    assert code == 1
    # what came before the damage was scanned, and so was the rest of the layer
    [loc] = locations_of(report, first)
    assert loc["path"] == "/opt/release.tar.gz!/rel/a.txt"
    [loc] = locations_of(report, elsewhere)
    assert loc["path"] == "/opt/zz.txt"
    [skip] = skipped_for(report, "/opt/release.tar.gz")
    assert "unreadable" in skip["reason"]

    text = cli("scan", img, "--quiet")
    assert "Traceback" not in text.out + text.err
    assert "/opt/release.tar.gz" in text.out and "Not fully scanned (1)" in text.out


@pytest.mark.parametrize("cut_at", ["inside-a-frame", "inside-the-next-magic"])
def test_truncated_nested_zstd_is_reported(cli: Cli, tmp_path: Path, cut_at: str) -> None:
    # zstandard's own reader ends silently on a cut frame; the scanner must still say so.
    first = gen.github_pat()
    frame = zstandard.ZstdCompressor().compress(
        tar_bytes({"rel/a.txt": f"token {first}\n".encode(), "rel/blob.bin": random.Random(5).randbytes(300_000)})
    )
    cut = (
        frame[: len(frame) - 1000]
        if cut_at == "inside-a-frame"
        else frame + zstandard.ZstdCompressor().compress(b"x")[:3]
    )
    img = image(tmp_path, {"opt/release.tar.zst": cut})
    code, report = run(cli, img, "--fail-on-incomplete")
    assert code == 1
    [loc] = locations_of(report, first)
    assert loc["path"] == "/opt/release.tar.zst!/rel/a.txt"
    [skip] = skipped_for(report, "/opt/release.tar.zst")
    assert "truncated zstd" in skip["reason"]


# --------------------------------------------------------------------------- damage: the stored bytes


def test_a_damaged_gz_is_also_scanned_as_stored(cli: Cli, tmp_path: Path) -> None:
    """A ``.gz`` that stops being gzip: its plain text is found where it is stored, on its line."""
    secret, elsewhere = gen.github_pat(), gen.slack_bot_token()
    start = gz(b"release notes\n" * 300)
    notes = start[: len(start) // 2] + f"\nfixed in 1.2\nGH_TOKEN={secret}\n".encode()
    img = image(tmp_path, {"app/notes.gz": notes, "app/zz.txt": f"slack {elsewhere}\n".encode()})
    code, report = run(cli, img, "--fail-on-incomplete")
    assert code == 1
    [loc] = locations_of(report, secret)
    assert (loc["path"], loc["line"]) == ("/app/notes.gz", notes[: notes.index(secret.encode())].count(b"\n") + 1)
    [loc] = locations_of(report, elsewhere)
    assert loc["path"] == "/app/zz.txt"
    [skip] = skipped_for(report, "/app/notes.gz")
    assert "unreadable" in skip["reason"] and "stored bytes scanned as plain bytes" in skip["reason"], skip


@pytest.mark.parametrize("name", ["opt/bundle.tar", "opt/bundle.tar.gz"])
def test_the_entries_after_a_bad_tar_header_are_scanned_as_bytes(cli: Cli, tmp_path: Path, name: str) -> None:
    before, after = gen.github_pat(), gen.github_pat()
    first = tar_bytes({"rel/before.txt": f"token {before}\n".encode()}, end=False)
    archive = first + b"\xa5" * 512 + tar_bytes({"rel/after.txt": f"token {after}\n".encode()})
    img = image(tmp_path, {name: gz(archive) if name.endswith(".gz") else archive})
    code, report = run(cli, img, "--fail-on-incomplete")
    assert code == 1
    [loc] = locations_of(report, before)
    assert loc["path"] == f"/{name}!/rel/before.txt"
    [loc] = locations_of(report, after)  # its header is out of reach behind the bad one: the archive's path
    assert (loc["path"], loc["line"]) == (f"/{name}", None)
    [skip] = skipped_for(report, f"/{name}")
    assert f"unreadable at offset {len(first)}" in skip["reason"] and "plain bytes" in skip["reason"], skip


def test_a_secret_seen_decoded_is_not_repeated_from_the_stored_bytes(cli: Cli, tmp_path: Path) -> None:
    """Stored deflate blocks hold their text verbatim: after damage, the stored bytes are scanned
    too, and a secret already found in the decoded file keeps its one location."""
    secret = gen.github_pat()
    archive = gz(
        tar_bytes({"rel/a.txt": f"token {secret}\n".encode(), "rel/b.bin": random.Random(7).randbytes(300_000)})
    )
    stored = gzip.compress(
        tar_bytes({"rel/a.txt": f"token {secret}\n".encode(), "rel/b.bin": random.Random(7).randbytes(300_000)}),
        compresslevel=0,
        mtime=0,
    )
    assert secret.encode() in stored and secret.encode() not in archive
    img = image(tmp_path, {"opt/stored.tar.gz": stored[: len(stored) * 2 // 3]})
    code, report = run(cli, img, "--fail-on-incomplete")
    assert code == 1
    [loc] = locations_of(report, secret)
    assert loc["path"] == "/opt/stored.tar.gz!/rel/a.txt"
    [skip] = skipped_for(report, "/opt/stored.tar.gz")
    assert "stored bytes scanned as plain bytes" in skip["reason"], skip


def test_what_was_decoded_before_the_damage_is_scanned(cli: Cli, tmp_path: Path) -> None:
    """Damage inside a file's first window: the part decoded before it is still scanned."""
    secret = gen.github_pat()
    log = b"GET /health 200\n" * 20_000 + f"token {secret}\n".encode() + random.Random(8).randbytes(600_000)
    archive = gz(tar_bytes({"var/log/app.log": log}))
    img = image(tmp_path, {"opt/logs.tar.gz": archive[: len(archive) * 3 // 4]})
    code, report = run(cli, img, "--fail-on-incomplete")
    assert code == 1
    [loc] = locations_of(report, secret)
    assert (loc["path"], loc["line"]) == ("/opt/logs.tar.gz!/var/log/app.log", 20_001)


def test_a_zip_stored_member_with_a_bad_checksum_is_read_as_stored(cli: Cli, tmp_path: Path) -> None:
    healthy, damaged = gen.github_pat(), gen.github_pat()
    jar = bytearray(
        zip_bytes(
            {"a/first.txt": f"token {healthy}\n".encode(), "b/app.properties": properties(damaged)},
            zipfile.ZIP_STORED,
        )
    )
    entry = jar.index(b"PK\x01\x02", jar.index(b"PK\x01\x02") + 4)  # the second member's directory entry
    jar[entry + 16] ^= 0xFF  # its CRC-32
    _, report = run(cli, image(tmp_path, {"app/x.jar": bytes(jar)}))
    [loc] = locations_of(report, healthy)
    assert loc["path"] == "/app/x.jar!/a/first.txt"
    [loc] = locations_of(report, damaged)
    assert loc["path"] == "/app/x.jar!/b/app.properties"
    [skip] = skipped_for(report, "/app/x.jar!/b/app.properties")
    assert "CRC" in skip["reason"] and "stored bytes" in skip["reason"], skip


def test_one_zip_member_over_the_size_limit_does_not_hide_the_others(cli: Cli, tmp_path: Path) -> None:
    secret = gen.github_pat()
    jar = zip_bytes({"a/zeros.bin": bytes(3 * 1024 * 1024), "b/app.properties": properties(secret)})
    config = limits_config(tmp_path, max_nested_uncompressed_bytes=1024 * 1024)
    code, report = run(cli, image(tmp_path, {"app/x.jar": jar}), "--config", config, "--fail-on-incomplete")
    assert code == 1
    [loc] = locations_of(report, secret)
    assert loc["path"] == "/app/x.jar!/b/app.properties"
    [skip] = skipped_for(report, "/app/x.jar!/a/zeros.bin")
    assert "1048576 bytes uncompressed" in skip["reason"], skip


# --------------------------------------------------------------------------- xz decoder memory


def test_xz_memory_is_a_limit(cli: Cli, tmp_path: Path) -> None:
    """An xz stream declaring a 16 MiB dictionary: decoded under the default limit, refused (and
    said so, naming the limit) under a lower one; the rest of the image is scanned either way."""
    secret, elsewhere = gen.github_pat(), gen.slack_bot_token()
    data = xz_declaring_dictionary(tar_bytes({"pkg/conf.txt": properties(secret)}), 24)
    img = image(tmp_path, {"opt/pkg.tar.xz": data, "opt/zz.txt": f"slack {elsewhere}\n".encode()})
    _, report = run(cli, img)
    [loc] = locations_of(report, secret)
    assert loc["path"] == "/opt/pkg.tar.xz!/pkg/conf.txt"
    assert report["skipped"] == []

    code, report = run(cli, img, "--limit", "max_xz_memory=8MiB", "--fail-on-incomplete")
    assert code == 1
    assert not [f for f in report["findings"] if f["secret"] == secret]
    [loc] = locations_of(report, elsewhere)
    assert loc["path"] == "/opt/zz.txt"
    [skip] = skipped_for(report, "/opt/pkg.tar.xz")
    assert f"max_xz_memory ({8 * 1024 * 1024} bytes)" in skip["reason"]
    assert "raise max_xz_memory to scan it" in skip["reason"]

"""A `.git` copied into an image (`COPY . .`): its loose objects and packs are read, deltas rebuilt,
and every committed version of a file is scanned, named by its git object id.

Repositories are made at test time by the real `git` binary (loose objects, `git gc`, `git repack
--depth`), put into an image layer, and scanned by the real CLI. Object ids are checked against
what git itself says (`git rev-parse`, `git hash-object`), never against the code under test.

The pack writer below (``pack``, ``delta``, ``copy``, ``insert``) builds the packs git would not
write (damaged, lying, looping) for the hostile corpus and the fuzz tests; it follows git's
documented pack format (gitformat-pack(5)).
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import secretgen
from conftest import CliResult, fingerprint_of
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive
from servers import need

Cli = Callable[..., CliResult]
APP = "srv/app"

# ----------------------------------------------------------------------------- a pack writer

TYPES = {"commit": 1, "tree": 2, "blob": 3, "tag": 4}
OFS_DELTA, REF_DELTA = 6, 7


def git_id(kind: str, body: bytes, algo: str = "sha1") -> str:
    """The object id git gives ``body`` as a ``kind``."""
    return hashlib.new(algo, f"{kind} {len(body)}\0".encode() + body).hexdigest()


def _object_header(kind: int, size: int) -> bytes:
    out = bytearray()
    byte, size = (kind << 4) | (size & 0x0F), size >> 4
    while size:
        out.append(byte | 0x80)
        byte, size = size & 0x7F, size >> 7
    out.append(byte)
    return bytes(out)


def _ofs_distance(distance: int) -> bytes:
    """OFS_DELTA's base offset: big-endian 7-bit groups, each continuation group one less."""
    out = [distance & 0x7F]
    distance >>= 7
    while distance:
        distance -= 1
        out.append(0x80 | (distance & 0x7F))
        distance >>= 7
    return bytes(reversed(out))


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


def delta(base_size: int, target_size: int, *ops: bytes) -> bytes:
    return _varint(base_size) + _varint(target_size) + b"".join(ops)


def copy(offset: int, length: int) -> bytes:
    op, args = 0x80, bytearray()
    for i in range(4):
        if (offset >> (8 * i)) & 0xFF:
            op |= 1 << i
            args.append((offset >> (8 * i)) & 0xFF)
    for i in range(3):
        if (length >> (8 * i)) & 0xFF:
            op |= 0x10 << i
            args.append((length >> (8 * i)) & 0xFF)
    return bytes([op]) + bytes(args)


def insert(data: bytes) -> bytes:
    assert 0 < len(data) < 0x80
    return bytes([len(data)]) + data


def pack(objects: list[tuple[Any, ...]], count: int | None = None) -> bytes:
    """A version 2 pack. Each object is ``(kind, body)`` for a whole one, ``("ofs", i, delta)``
    for a delta on object ``i`` of this list (``i`` may be its own index: a self-reference), or
    ``("ref", base_id_hex, delta)``. ``count`` overrides the object count of the header."""
    out = bytearray(b"PACK" + struct.pack(">II", 2, len(objects) if count is None else count))
    offsets: list[int] = []
    for obj in objects:
        offsets.append(len(out))
        if obj[0] == "ofs":
            _, base, body = obj
            out += _object_header(OFS_DELTA, len(body)) + _ofs_distance(offsets[-1] - offsets[base])
        elif obj[0] == "ref":
            _, base_id, body = obj
            out += _object_header(REF_DELTA, len(body)) + bytes.fromhex(base_id)
        else:
            kind, body = obj
            out += _object_header(TYPES[kind], len(body))
        out += zlib.compress(body)
    return bytes(out + hashlib.sha1(out).digest())


def pack_name(data: bytes) -> str:
    return f"pack-{hashlib.sha1(data).hexdigest()}.pack"


def loose_path(oid: str) -> str:
    return f"objects/{oid[:2]}/{oid[2:]}"


# ----------------------------------------------------------------------------- real repositories


@pytest.fixture
def git() -> Callable[..., str]:
    binary = need("git")
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
    }

    def run(repo: Path, *args: str) -> str:
        done = subprocess.run([binary, "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    return run


def config_file(secret: str, version: int) -> bytes:
    """A settings file long enough for git to store its versions as deltas of one another. Each
    revision changes one more option for good, so it is nearest to the revision before it: git
    makes chains of deltas, not a star around one base."""
    lines = [f"# service settings, revision {version}"]
    lines += [
        f"option_{i:03d} = {'changed' if i < version else 'value'} number {i} of the settings" for i in range(120)
    ]
    lines.insert(60, f"github_token = {secret}")
    return ("\n".join(lines) + "\n").encode()


def make_history(git: Callable[..., str], repo: Path, secrets: list[str], *, init: tuple[str, ...] = ()) -> list[str]:
    """Commit ``app.conf`` once per secret, then delete it (its only copies are in ``.git``).
    Returns each version's blob id, as git computes it."""
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main", *init)
    ids = []
    for version, secret in enumerate(secrets):
        (repo / "app.conf").write_bytes(config_file(secret, version))
        git(repo, "add", "app.conf")
        git(repo, "commit", "-q", "-m", f"settings, revision {version}")
        ids.append(git(repo, "hash-object", "app.conf"))
    git(repo, "rm", "-q", "app.conf")
    git(repo, "commit", "-q", "-m", "no settings in the repository")
    for back, oid in enumerate(reversed(ids), start=1):  # what the commits hold is what was written
        assert git(repo, "rev-parse", f"HEAD~{back}:app.conf") == oid
    return ids


def git_files(repo: Path) -> Iterator[Entry]:
    for path in sorted((repo / ".git").rglob("*")):
        if path.is_file():
            yield Entry(f"{APP}/{path.relative_to(repo).as_posix()}", path.read_bytes())


def scan(cli: Cli, tmp_path: Path, entries: list[Entry], *extra: str) -> dict[str, Any]:
    image = tmp_path / "image.tar"
    write_docker_archive(image, ImageSpec([Layer(entries, created_by="COPY . /srv/app")]))
    result = cli("scan", image, "-f", "json", "-q", *extra)
    assert "Traceback" not in result.err and result.code in (0, 1), result.err
    return result.report


def paths_of(report: dict[str, Any], secret: str) -> list[str]:
    return [
        loc["path"] for f in report["findings"] if f["fingerprint"] == fingerprint_of(secret) for loc in f["locations"]
    ]


def delta_depths(git: Callable[..., str], repo: Path) -> dict[str, int]:
    """Object id -> its delta chain depth in the repository's packs, as ``git verify-pack`` says."""
    depths = {}
    for idx in (repo / ".git" / "objects" / "pack").glob("*.idx"):
        for line in git(repo, "verify-pack", "-v", str(idx)).splitlines():
            fields = line.split()
            if len(fields) >= 5 and fields[1] in TYPES and fields[2].isdigit():
                depths[fields[0]] = int(fields[5]) if len(fields) >= 7 else 0
    return depths


def the_pack(repo: Path) -> str:
    (found,) = (repo / ".git" / "objects" / "pack").glob("*.pack")
    return f"/{APP}/.git/objects/pack/{found.name}"


# ----------------------------------------------------------------------------- tests


def test_loose_objects_are_read_and_each_version_named_by_its_blob_id(
    cli: Cli, git: Callable[..., str], tmp_path: Path
) -> None:
    old, new = secretgen.github_pat(), secretgen.github_pat()
    repo = tmp_path / "repo"
    ids = make_history(git, repo, [old, new])
    assert not list((repo / ".git" / "objects" / "pack").glob("*.pack"))
    report = scan(cli, tmp_path, list(git_files(repo)))
    for secret, oid in zip((old, new), ids, strict=True):
        assert paths_of(report, secret) == [f"/{APP}/.git/{loose_path(oid)}!/blob/{oid}"]
    assert report["complete"], report["skipped"]


def test_a_secret_in_a_commit_message_is_found_in_the_commit(cli: Cli, git: Callable[..., str], tmp_path: Path) -> None:
    token = secretgen.github_pat()
    repo = tmp_path / "repo"
    make_history(git, repo, [secretgen.github_pat()])
    (repo / "README").write_text("docs\n")
    git(repo, "add", "README")
    git(repo, "commit", "-q", "-m", f"deploy with token {token}")
    commit = git(repo, "rev-parse", "HEAD")
    report = scan(cli, tmp_path, list(git_files(repo)))
    # also in .git/COMMIT_EDITMSG and the reflogs, as plain text
    assert f"/{APP}/.git/{loose_path(commit)}!/commit/{commit}" in paths_of(report, token)


def test_after_gc_the_versions_stored_as_deltas_are_rebuilt(cli: Cli, git: Callable[..., str], tmp_path: Path) -> None:
    old, new = secretgen.github_pat(), secretgen.github_pat()
    repo = tmp_path / "repo"
    ids = make_history(git, repo, [old, new])
    git(repo, "gc", "-q", "--aggressive")
    depths = delta_depths(git, repo)
    assert max(depths[oid] for oid in ids) >= 1, depths  # one version is stored as a delta of the other
    assert not list((repo / ".git" / "objects").glob("??/*")), "gc left loose objects"
    report = scan(cli, tmp_path, list(git_files(repo)))
    for secret, oid in zip((old, new), ids, strict=True):
        assert paths_of(report, secret) == [f"{the_pack(repo)}!/blob/{oid}"]
    assert report["complete"], report["skipped"]


def test_long_delta_chains_after_repack_are_rebuilt(cli: Cli, git: Callable[..., str], tmp_path: Path) -> None:
    """60 revisions, repacked with chains up to 50 deep: every revision's token is found, at the
    id git gives it, however deep its delta sits."""
    secrets = [secretgen.github_pat() for _ in range(60)]
    repo = tmp_path / "repo"
    ids = make_history(git, repo, secrets)
    git(repo, "repack", "-q", "-a", "-d", "-f", "--depth=50", "--window=250")
    depths = delta_depths(git, repo)
    assert max(depths[oid] for oid in ids) >= 20, sorted(depths[oid] for oid in ids)
    report = scan(cli, tmp_path, list(git_files(repo)))
    where = the_pack(repo)
    for secret, oid in zip(secrets, ids, strict=True):
        assert paths_of(report, secret) == [f"{where}!/blob/{oid}"], depths[oid]
    assert report["complete"], report["skipped"]


def test_a_blob_in_a_loose_object_and_in_a_pack_is_scanned_once(
    cli: Cli, git: Callable[..., str], tmp_path: Path
) -> None:
    """gc packs the objects and deletes the loose copies; one put back (as an interrupted gc, or a
    second clone, leaves it) must not double the locations."""
    token = secretgen.github_pat()
    repo = tmp_path / "repo"
    (oid,) = make_history(git, repo, [token])
    loose = repo / ".git" / loose_path(oid)
    stored = loose.read_bytes()
    git(repo, "gc", "-q")
    assert not loose.exists()
    loose.parent.mkdir(exist_ok=True)
    loose.write_bytes(stored)
    report = scan(cli, tmp_path, list(git_files(repo)))
    paths = paths_of(report, token)
    assert len(paths) == 1 and paths[0].endswith(f"!/blob/{oid}"), paths


def test_a_sha256_repository_is_read_with_sha256_ids(cli: Cli, git: Callable[..., str], tmp_path: Path) -> None:
    loose_token, packed_token = secretgen.github_pat(), secretgen.github_pat()
    repo = tmp_path / "repo"
    packed_id, loose_id = make_history(git, repo, [packed_token, loose_token], init=("--object-format=sha256",))
    assert len(packed_id) == 64
    report = scan(cli, tmp_path, list(git_files(repo)))
    assert paths_of(report, loose_token) == [f"/{APP}/.git/{loose_path(loose_id)}!/blob/{loose_id}"]
    git(repo, "gc", "-q", "--aggressive")
    report = scan(cli, tmp_path, list(git_files(repo)))
    assert paths_of(report, packed_token) == [f"{the_pack(repo)}!/blob/{packed_id}"]
    assert report["complete"], report["skipped"]


def test_a_file_that_only_looks_like_a_git_object_is_scanned_as_it_is(cli: Cli, tmp_path: Path) -> None:
    token = secretgen.github_pat()
    oid = "ab" + "c" * 38
    pack_file = f"{APP}/.git/objects/pack/pack-{'d' * 40}.pack"
    entries = [
        Entry(f"{APP}/.git/{loose_path(oid)}", f"x\u0001 token: {token}\n".encode()),  # x\x01: a zlib header
        Entry(pack_file, f"PACK but no pack: token: {token}\n".encode()),
    ]
    report = scan(cli, tmp_path, entries)
    assert sorted(paths_of(report, token)) == sorted([f"/{APP}/.git/{loose_path(oid)}", f"/{pack_file}"])
    assert report["complete"], report["skipped"]


def test_damage_in_a_pack_costs_the_objects_after_it_only(cli: Cli, tmp_path: Path) -> None:
    first, second, third = (f"token: {secretgen.github_pat()}\n".encode() for _ in range(3))
    data = pack([("blob", first), ("blob", second), ("blob", third)])
    cut = data.index(zlib.compress(third)) + 4
    damaged = data[:cut] + b"\xff" * 8 + data[cut + 8 :]
    name = f"{APP}/.git/objects/pack/{pack_name(data)}"
    report = scan(cli, tmp_path, [Entry(name, damaged)])
    for body in (first, second):
        secret = body.decode().split()[1]
        assert paths_of(report, secret) == [f"/{name}!/blob/{git_id('blob', body)}"]
    (skip,) = report["skipped"]
    assert skip["what"].endswith(f"/{name}") and "git pack unreadable at offset" in skip["reason"]


def test_a_delta_on_a_base_outside_the_pack_is_listed_as_not_scanned(cli: Cli, tmp_path: Path) -> None:
    """A thin pack (as fetched, before git completes it) refers to bases it does not hold."""
    token = secretgen.github_pat()
    base = f"token: {token}\n".encode()
    data = pack([("ref", git_id("blob", b"elsewhere\n"), delta(10, len(base), insert(base)))])
    report = scan(cli, tmp_path, [Entry(f"{APP}/.git/objects/pack/{pack_name(data)}", data)])
    assert paths_of(report, token) == []
    assert any("whose base is not in this pack" in s["reason"] for s in report["skipped"]), report["skipped"]


def test_ref_and_ofs_deltas_in_a_hand_made_pack(cli: Cli, tmp_path: Path) -> None:
    """A REF_DELTA before its base, and an OFS_DELTA on that delta: each is rebuilt whatever the order."""
    a, b, c = (secretgen.github_pat() for _ in range(3))
    base = f"first: {a}\n".encode()
    second = base + f"second: {b}\n".encode()
    third = second + f"third: {c}\n".encode()
    data = pack(
        [
            (
                "ref",
                git_id("blob", base),
                delta(len(base), len(second), copy(0, len(base)), insert(second[len(base) :])),
            ),
            ("blob", base),
            ("ofs", 0, delta(len(second), len(third), copy(0, len(second)), insert(third[len(second) :]))),
        ]
    )
    name = f"/{APP}/.git/objects/pack/{pack_name(data)}"
    report = scan(cli, tmp_path, [Entry(name, data)])
    at = {body: f"{name}!/blob/{git_id('blob', body)}" for body in (base, second, third)}
    assert sorted(paths_of(report, a)) == sorted(at.values())
    assert sorted(paths_of(report, b)) == sorted([at[second], at[third]])
    assert paths_of(report, c) == [at[third]]
    assert report["complete"], report["skipped"]


def test_a_git_directory_removed_by_a_later_layer_is_reported_as_removed(
    cli: Cli, git: Callable[..., str], tmp_path: Path
) -> None:
    """`COPY . .` then `RUN rm -rf .git`: gone from the container, still in the pulled layer."""
    token = secretgen.github_pat()
    repo = tmp_path / "repo"
    (oid,) = make_history(git, repo, [token])
    image = tmp_path / "image.tar"
    steps = [
        Layer(list(git_files(repo)), created_by="COPY . /srv/app"),
        Layer([Entry(f"{APP}/.git", kind="whiteout")], created_by="RUN rm -rf /srv/app/.git"),
    ]
    write_docker_archive(image, ImageSpec(steps))
    result = cli("scan", image, "-f", "json", "-q")
    assert result.code == 1, result.err
    (finding,) = [f for f in result.report["findings"] if f["fingerprint"] == fingerprint_of(token)]
    (location,) = finding["locations"]
    assert location["path"] == f"/{APP}/.git/{loose_path(oid)}!/blob/{oid}"
    assert (location["layer_index"], location["exposure"], location["removed_in_layer"]) == (0, "removed", 1)

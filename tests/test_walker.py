"""Layer walking semantics, end to end: real image files built in tmp_path, the real CLI, its JSON.

What a user checks in a report: which rule fired, in which layer and file and on which line,
whether the file still ships in the final filesystem or was deleted/overwritten later (and by
which layer), and which build step added it. Every secret is generated at test time.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import secretgen as gen
from conftest import CliResult, scan_json
from imagebuilder import (
    EmptyStep,
    Entry,
    ImageSpec,
    Layer,
    layer_tar,
    write_docker_archive,
    write_oci_layout,
    write_rootfs,
)

GITHUB = "github.personal-access-token"
SLACK = "slack.bot-token"

Cli = Callable[..., CliResult]
MiB = 1024 * 1024


# --------------------------------------------------------------------------- helpers


def docker(tmp_path: Path, spec: ImageSpec, name: str = "image.tar") -> Path:
    path = tmp_path / name
    write_docker_archive(path, spec)
    return path


def oci(tmp_path: Path, spec: ImageSpec, name: str = "layout") -> Path:
    path = tmp_path / name
    write_oci_layout(path, spec, ref_names=["1.0"])
    return path


def scan(cli: Cli, image: Path | str, *extra: str) -> dict[str, Any]:
    """Scan with --show-secrets (so findings can be matched to planted values) and check the run was clean."""
    report = scan_json(cli, image, "--show-secrets", *extra)
    assert report["errors"] == []
    return report


def finding(report: dict[str, Any], secret: str) -> dict[str, Any]:
    matches = [f for f in report["findings"] if f.get("secret") == secret]
    assert len(matches) == 1, f"expected one finding for the planted secret, got {len(matches)}: {report['findings']}"
    return matches[0]


def only_location(report: dict[str, Any], secret: str) -> dict[str, Any]:
    locs = finding(report, secret)["locations"]
    assert len(locs) == 1, locs
    return locs[0]


def diff_id(layer: Layer) -> str:
    return "sha256:" + hashlib.sha256(layer_tar(layer)).hexdigest()


def text_file(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


# --------------------------------------------------------------------------- whiteouts and overwrites


@pytest.mark.parametrize("whiteout", ["app/notes.txt", "app"], ids=["file", "parent-dir"])
def test_whiteout_in_later_layer_marks_file_deleted(cli: Cli, tmp_path: Path, whiteout: str) -> None:
    token = gen.github_pat()
    spec = ImageSpec(
        [
            Layer(
                [Entry("app/", kind="dir"), Entry("app/notes.txt", text_file("# deploy notes", f"remote {token}"))],
                created_by="COPY notes.txt /app/notes.txt",
            ),
            Layer(
                [Entry("srv/", kind="dir"), Entry("srv/readme.txt", b"nothing here\n")],
                created_by="COPY readme.txt /srv/",
            ),
            Layer([Entry(whiteout, kind="whiteout")], created_by=f"RUN rm -rf /{whiteout}"),
        ]
    )
    report = scan(cli, docker(tmp_path, spec))
    f = finding(report, token)
    assert f["rule_id"] == GITHUB
    assert f["exposure"] == "removed"
    [loc] = f["locations"]
    assert loc["layer_index"] == 0
    assert loc["path"] == "/app/notes.txt"
    assert loc["line"] == 2
    assert loc["exposure"] == "removed"
    assert loc["removed_in_layer"] == 2
    assert loc["removed_how"] == "deleted"
    assert loc["created_by"] == "COPY notes.txt /app/notes.txt"


def test_opaque_directory_hides_earlier_files(cli: Cli, tmp_path: Path) -> None:
    hidden, sibling, readded = gen.github_pat(), gen.github_pat(), gen.slack_bot_token()
    spec = ImageSpec(
        [
            Layer(
                [
                    Entry("app/", kind="dir"),
                    Entry("app/conf/", kind="dir"),
                    Entry("app/conf/old.ini", text_file("[remote]", f"key = {hidden}")),
                    Entry("app/conf-other.ini", text_file(f"key = {sibling}")),
                ],
                created_by="COPY conf /app/",
            ),
            Layer(
                [
                    Entry("app/conf", kind="opaque"),
                    Entry("app/conf/", kind="dir"),
                    Entry("app/conf/new.ini", text_file("[remote]", f"slack = {readded}")),
                ],
                created_by="COPY conf-v2 /app/conf",
            ),
        ]
    )
    report = scan(cli, docker(tmp_path, spec))

    loc = only_location(report, hidden)
    assert (loc["layer_index"], loc["path"], loc["line"]) == (0, "/app/conf/old.ini", 2)
    assert (loc["exposure"], loc["removed_in_layer"], loc["removed_how"]) == ("removed", 1, "deleted")

    # a path that only shares a prefix with the opaque directory is untouched
    loc = only_location(report, sibling)
    assert (loc["path"], loc["exposure"], loc["removed_in_layer"]) == ("/app/conf-other.ini", "final", None)

    # the opaque marker hides lower layers only, not the files added beside it
    f = finding(report, readded)
    assert f["rule_id"] == SLACK
    [loc] = f["locations"]
    assert (loc["layer_index"], loc["path"], loc["exposure"]) == (1, "/app/conf/new.ini", "final")


def test_opaque_marker_at_the_root_hides_everything_below(cli: Cli, tmp_path: Path) -> None:
    token = gen.github_pat()
    spec = ImageSpec(
        [
            Layer(
                [Entry("app/", kind="dir"), Entry("app/old.ini", text_file(f"key = {token}"))], created_by="COPY . /"
            ),
            Layer(
                [Entry("", kind="opaque"), Entry("app/", kind="dir"), Entry("app/new.ini", b"key = none\n")],
                created_by="COPY --link . /",
            ),
        ]
    )
    report = scan(cli, docker(tmp_path, spec))
    loc = only_location(report, token)
    assert (loc["layer_index"], loc["path"]) == (0, "/app/old.ini")
    assert (loc["exposure"], loc["removed_in_layer"], loc["removed_how"]) == ("removed", 1, "deleted")


def test_file_overwritten_with_clean_content(cli: Cli, tmp_path: Path) -> None:
    token = gen.github_pat()
    spec = ImageSpec(
        [
            Layer(
                [Entry("etc/app.conf", text_file("user = svc", f"token = {token}"))], created_by="COPY app.conf /etc/"
            ),
            Layer(
                [Entry("etc/app.conf", text_file("user = svc", "token = ${APP_TOKEN}"))],
                created_by="COPY app.conf.tpl /etc/app.conf",
            ),
        ]
    )
    report = scan(cli, docker(tmp_path, spec))
    f = finding(report, token)
    assert f["rule_id"] == GITHUB and f["exposure"] == "removed"
    [loc] = f["locations"]
    assert (loc["layer_index"], loc["path"], loc["line"]) == (0, "/etc/app.conf", 2)
    assert (loc["exposure"], loc["removed_in_layer"], loc["removed_how"]) == ("removed", 1, "overwritten")


def test_file_overwritten_with_same_secret_is_one_finding_two_locations(cli: Cli, tmp_path: Path) -> None:
    token = gen.github_pat()
    spec = ImageSpec(
        [
            Layer([Entry("etc/app.conf", text_file(f"token {token}"))], created_by="COPY app.conf /etc/"),
            Layer(
                [Entry("etc/app.conf", text_file("# v2", "user svc", f"token {token}"))],
                created_by="COPY app-v2.conf /etc/app.conf",
            ),
        ]
    )
    report = scan(cli, docker(tmp_path, spec))
    f = finding(report, token)
    assert f["rule_id"] == GITHUB
    assert f["exposure"] == "final"  # the widest exposure of its locations
    locs = sorted(f["locations"], key=lambda loc: loc["layer_index"])
    where = [(loc["layer_index"], loc["path"], loc["line"]) for loc in locs]
    assert where == [(0, "/etc/app.conf", 1), (1, "/etc/app.conf", 3)]
    assert (locs[0]["exposure"], locs[0]["removed_in_layer"], locs[0]["removed_how"]) == ("removed", 1, "overwritten")
    assert (locs[1]["exposure"], locs[1]["removed_in_layer"], locs[1]["removed_how"]) == ("final", None, None)
    assert locs[0]["created_by"] == "COPY app.conf /etc/"
    assert locs[1]["created_by"] == "COPY app-v2.conf /etc/app.conf"


@pytest.mark.parametrize(
    "replacement",
    [Entry("opt/svc", b"a plain file now\n"), Entry("opt/svc", kind="symlink", target="/srv/svc")],
    ids=["file", "symlink"],
)
def test_parent_directory_replaced_by_non_directory(cli: Cli, tmp_path: Path, replacement: Entry) -> None:
    token, other = gen.github_pat(), gen.github_pat()
    spec = ImageSpec(
        [
            Layer(
                [
                    Entry("opt/", kind="dir"),
                    Entry("opt/svc/", kind="dir"),
                    Entry("opt/svc/conf/", kind="dir"),
                    Entry("opt/svc/conf/remote.txt", text_file(f"git {token}")),
                    Entry("opt/svc-tools/env.txt", text_file(f"git {other}")),
                ],
                created_by="COPY svc /opt/",
            ),
            Layer([replacement], created_by="RUN mv /opt/svc /srv/svc && ln -s /srv/svc /opt/svc"),
        ]
    )
    report = scan(cli, docker(tmp_path, spec))
    loc = only_location(report, token)
    assert (loc["layer_index"], loc["path"], loc["line"]) == (0, "/opt/svc/conf/remote.txt", 1)
    assert (loc["exposure"], loc["removed_in_layer"], loc["removed_how"]) == ("removed", 1, "deleted")
    loc = only_location(report, other)
    assert (loc["path"], loc["exposure"]) == ("/opt/svc-tools/env.txt", "final")


# --------------------------------------------------------------------------- build steps


@pytest.mark.parametrize("fmt", ["docker-archive", "oci"])
def test_created_by_is_the_layers_own_step_despite_empty_history_entries(cli: Cli, tmp_path: Path, fmt: str) -> None:
    first, second = gen.github_pat(), gen.slack_bot_token()
    layers = [
        Layer([Entry("etc/os-release", b"ID=demo\n")], created_by="ADD rootfs.tar /"),
        Layer([Entry("srv/token.txt", text_file("# ci", f"{first}"))], created_by="COPY token.txt /srv/token.txt"),
        Layer(
            [Entry("srv/hooks/notify.sh", text_file("#!/bin/sh", "# notify", f'curl -d "t={second}" localhost'))],
            created_by="RUN /bin/sh -c ./install-hooks.sh",
        ),
    ]
    spec = ImageSpec(
        [
            layers[0],
            EmptyStep("ENV PATH=/usr/local/bin:/usr/bin:/bin"),
            EmptyStep("ARG VERSION"),
            layers[1],
            EmptyStep("LABEL maintainer=ops"),
            EmptyStep("WORKDIR /srv"),
            layers[2],
            EmptyStep('CMD ["/srv/run"]'),
        ]
    )
    image = docker(tmp_path, spec) if fmt == "docker-archive" else oci(tmp_path, spec)
    report = scan(cli, image)

    loc = only_location(report, first)
    assert (loc["layer_index"], loc["path"], loc["line"]) == (1, "/srv/token.txt", 2)
    assert loc["created_by"] == "COPY token.txt /srv/token.txt"
    assert loc["layer_digest"] == diff_id(layers[1])

    f = finding(report, second)
    assert f["rule_id"] == SLACK
    [loc] = f["locations"]
    assert (loc["layer_index"], loc["path"], loc["line"]) == (2, "/srv/hooks/notify.sh", 3)
    assert loc["created_by"] == "RUN /bin/sh -c ./install-hooks.sh"
    assert loc["layer_digest"] == diff_id(layers[2])
    assert report["images"][0]["layers"] == 3


# --------------------------------------------------------------------------- links


@pytest.mark.parametrize("fmt", ["docker-archive", "dir"])
def test_symlinks_are_not_followed(cli: Cli, tmp_path: Path, fmt: str) -> None:
    token = gen.github_pat()
    layer = Layer(
        [
            Entry("app/", kind="dir"),
            Entry("app/real.txt", text_file("# remote", f"token {token}")),
            Entry("app/link.txt", kind="symlink", target="real.txt"),
            Entry("app/abs-link.txt", kind="symlink", target="/app/real.txt"),
            Entry("app/dir-link", kind="symlink", target="/app"),
            # links named like credential files, pointing outside the image
            Entry("root/", kind="dir"),
            Entry("root/.aws/", kind="dir"),
            Entry("root/.aws/credentials", kind="symlink", target="/etc/shadow"),
            Entry("root/.git-credentials", kind="symlink", target="../../../../etc/passwd"),
            Entry("root/.npmrc", kind="symlink", target="../../.."),
            Entry("root/.docker", kind="symlink", target="/root/../../../../"),
        ],
        created_by="COPY app /app",
    )
    if fmt == "dir":
        root = tmp_path / "rootfs"
        write_rootfs(root, [layer])
        image = f"dir:{root}"
    else:
        image = str(docker(tmp_path, ImageSpec([layer])))
    report = scan(cli, image)
    f = finding(report, token)
    assert f["rule_id"] == GITHUB
    [loc] = f["locations"]
    assert (loc["path"], loc["line"], loc["exposure"]) == ("/app/real.txt", 2, "final")
    assert len(report["findings"]) == 1
    assert report["skipped"] == []


def test_hardlinks_do_not_crash_and_the_target_is_reported(cli: Cli, tmp_path: Path) -> None:
    token = gen.github_pat()
    spec = ImageSpec(
        [
            Layer(
                [
                    Entry("app/", kind="dir"),
                    Entry("app/real.txt", text_file("user svc", f"token {token}")),
                    Entry("app/hard.txt", kind="hardlink", target="app/real.txt"),
                    Entry("app/dangling.txt", kind="hardlink", target="app/nowhere.txt"),
                    Entry("app/outside.txt", kind="hardlink", target="../../etc/shadow"),
                ],
                created_by="COPY app /app",
            ),
            # a hardlink to a file of an earlier layer
            Layer(
                [Entry("app/again.txt", kind="hardlink", target="app/real.txt")],
                created_by="RUN ln /app/real.txt /app/again.txt",
            ),
        ]
    )
    report = scan(cli, docker(tmp_path, spec))
    f = finding(report, token)
    assert f["rule_id"] == GITHUB
    paths = {(loc["layer_index"], loc["path"], loc["line"], loc["exposure"]) for loc in f["locations"]}
    assert (0, "/app/real.txt", 2, "final") in paths
    assert (0, "/app/hard.txt", 2, "final") in paths
    assert (1, "/app/again.txt", 2, "final") in paths
    assert report["skipped"] == []


def test_a_hardlink_keeps_the_secret_in_the_final_filesystem_after_the_target_is_deleted(
    cli: Cli, tmp_path: Path
) -> None:
    token = gen.github_pat()
    spec = ImageSpec(
        [
            Layer(
                [
                    Entry("app/", kind="dir"),
                    Entry("app/real.txt", f"token {token}\n".encode()),
                    Entry("app/alias.txt", kind="hardlink", target="app/real.txt"),
                ]
            ),
            Layer([Entry("app/real.txt", kind="whiteout")], created_by="RUN rm /app/real.txt"),
        ]
    )
    f = finding(scan(cli, docker(tmp_path, spec)), token)
    by_path = {loc["path"]: loc for loc in f["locations"]}
    assert by_path["/app/real.txt"]["exposure"] == "removed"
    assert by_path["/app/alias.txt"]["exposure"] == "final"
    assert f["exposure"] == "final"


# --------------------------------------------------------------------------- odd names and sizes


def test_non_utf8_file_name(cli: Cli, tmp_path: Path) -> None:
    kept, deleted = gen.github_pat(), gen.github_pat()
    spec = ImageSpec(
        [
            Layer(
                [
                    Entry("app/", kind="dir"),
                    Entry("", text_file("# latin-1 name", f"token {kept}"), raw_name=b"app/caf\xe9-\xff.conf"),
                    Entry("", text_file(f"token {deleted}"), raw_name=b"app/old-\xe9.conf"),
                ],
                created_by="COPY . /app",
            ),
            Layer([Entry("", kind="whiteout", raw_name=b"app/old-\xe9.conf")], created_by="RUN rm /app/old*"),
        ]
    )
    image = docker(tmp_path, spec)
    result = cli("scan", str(image), "--format", "json", "--quiet", "--show-secrets")
    assert result.code == 1, result.err
    report = result.report  # valid JSON
    assert report["errors"] == []

    loc = only_location(report, kept)
    assert loc["path"] == "/app/caf\\xe9-\\xff.conf"
    assert (loc["line"], loc["exposure"]) == (2, "final")

    # the whiteout's name is decoded the same way, so it matches the file it deletes
    loc = only_location(report, deleted)
    assert loc["path"] == "/app/old-\\xe9.conf"
    assert (loc["exposure"], loc["removed_in_layer"], loc["removed_how"]) == ("removed", 1, "deleted")

    text = cli("scan", str(image), "--quiet")
    assert text.code == 1, text.err
    assert "/app/caf\\xe9-\\xff.conf:2" in text.out


def test_empty_files(cli: Cli, tmp_path: Path) -> None:
    token = gen.github_pat()
    spec = ImageSpec(
        [
            Layer(
                [
                    Entry("app/empty.txt", b""),
                    Entry("root/.aws/credentials", b""),
                    Entry("root/.docker/config.json", b""),
                    Entry("app/empty.jar", b""),
                    Entry("app/token.txt", text_file(token)),
                ]
            )
        ]
    )
    report = scan(cli, docker(tmp_path, spec))
    assert len(report["findings"]) == 1
    loc = only_location(report, token)
    assert (loc["path"], loc["line"]) == ("/app/token.txt", 1)
    assert report["skipped"] == []
    assert report["images"][0]["files_scanned"] == 5


def _filler(size: int, seed: int) -> bytearray:
    """``size`` bytes of lines of random lower-case hex: text no rule matches."""
    hexdata = random.Random(seed).randbytes(size // 2 + 64).hex()
    lines = [hexdata[i : i + 71] for i in range(0, len(hexdata), 71)]
    return bytearray("\n".join(lines).encode()[:size])


def test_huge_file_secrets_at_window_boundaries(cli: Cli, tmp_path: Path) -> None:
    """A ~20 MiB file is scanned in 8 MiB windows: a secret across a window edge, and one ending
    the file, are each found exactly once, on the right line."""
    chunk, overlap = 8 * MiB, 64 * 1024  # the default limits
    size = 20 * MiB
    data = _filler(size, seed=7)
    planted: dict[str, int] = {}

    def plant(token: str, start: int) -> None:
        data[start - 1 : start] = b"\n"  # the token starts its own line (the line before it is cut short)
        data[start : start + len(token)] = token.encode()
        data[start + len(token) : start + len(token) + 1] = b"\n"
        planted[token] = start

    plant(gen.github_pat(), chunk - 5)  # straddles the first window's end
    plant(gen.github_pat(), 2 * chunk - overlap - 17)  # straddles the second window's end
    plant(gen.slack_bot_token(), 12 * MiB + 3)  # in the middle of a window
    last = gen.github_pat()
    data[-len(last) - 1 :] = b" " + last.encode()  # the file's very last bytes, no newline after
    planted[last] = len(data) - len(last)
    assert len(data) == size

    spec = ImageSpec([Layer([Entry("var/lib/app/dump.txt", bytes(data))], created_by="COPY dump.txt /var/lib/app/")])
    report = scan(cli, docker(tmp_path, spec))
    assert len(report["findings"]) == len(planted)
    for token, start in planted.items():
        loc = only_location(report, token)
        assert loc["path"] == "/var/lib/app/dump.txt"
        assert loc["line"] == data.count(b"\n", 0, start) + 1, token[:4]
        assert loc["exposure"] == "final"


# --------------------------------------------------------------------------- compression


def _normalised(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    keys = ("layer_index", "layer_digest", "path", "line", "created_by", "exposure", "removed_in_layer", "removed_how")
    return sorted(
        (f["rule_id"], f["fingerprint"], f["secret"], *(loc[k] for k in keys))
        for f in report["findings"]
        for loc in f["locations"]
    )


def test_gzip_zstd_and_uncompressed_layers_give_the_same_findings(cli: Cli, tmp_path: Path) -> None:
    a, b, c = gen.github_pat(), gen.slack_bot_token(), gen.github_pat()

    def spec(compressions: tuple[str, str, str]) -> ImageSpec:
        return ImageSpec(
            [
                Layer(
                    [
                        Entry("app/", kind="dir"),
                        Entry("app/a.txt", text_file("x", f"token {a}")),
                        Entry("app/big.bin", random.Random(1).randbytes(300_000)),
                    ],
                    created_by="COPY a.txt /app/",
                    compression=compressions[0],
                ),
                EmptyStep("ENV MODE=prod"),
                Layer(
                    [Entry("app/b.txt", text_file(f"slack {b}")), Entry("app/a.txt", kind="whiteout")],
                    created_by="RUN rm /app/a.txt",
                    compression=compressions[1],
                ),
                Layer(
                    [Entry("app/b.txt", text_file("# rotated")), Entry("app/c.txt", text_file("", "", f"{c}"))],
                    created_by="COPY c.txt /app/",
                    compression=compressions[2],
                ),
            ]
        )

    results = {}
    for comps in [("gzip",) * 3, ("zstd",) * 3, ("none",) * 3, ("zstd", "none", "gzip")]:
        report = scan(cli, oci(tmp_path, spec(comps), name="-".join(comps)))
        results[comps] = _normalised(report)
    baseline = results[("gzip",) * 3]
    assert len(baseline) == 3
    for comps, found in results.items():
        assert found == baseline, comps
    by_secret = {row[2]: row for row in baseline}
    first_layer = diff_id(spec(("gzip",) * 3).layers[0])
    assert by_secret[a][3:] == (0, first_layer, "/app/a.txt", 2, "COPY a.txt /app/", "removed", 1, "deleted")
    assert by_secret[b][5:] == ("/app/b.txt", 1, "RUN rm /app/a.txt", "removed", 2, "overwritten")
    assert by_secret[c][5:] == ("/app/c.txt", 3, "COPY c.txt /app/", "final", None, None)
    # a docker-archive of the same image (uncompressed blobs) agrees too
    assert _normalised(scan(cli, docker(tmp_path, spec(("gzip",) * 3)))) == baseline


def _gzip_prefix_of_size(data: bytes, size: int) -> int:
    """n such that a stored (level 0) gzip member of data[:n] is exactly ``size`` bytes."""
    n = size - 200
    while (got := len(gzip.compress(data[:n], compresslevel=0, mtime=0))) != size:
        n += size - got
    return n


def test_multi_member_gzip_layer(cli: Cli, tmp_path: Path) -> None:
    """A layer blob of several gzip members (eStargz, pigz --independent) is read to its end, even
    when a member ends exactly where a 1 MiB read of the blob ends."""
    token = gen.github_pat()
    layer = Layer(
        [
            Entry("data/blob.bin", random.Random(8).randbytes(1_200_000)),
            Entry("data/conf.txt", text_file("# after the first member", f"token {token}")),
        ],
        created_by="COPY data /data",
        compression="none",
    )
    layout = oci(tmp_path, ImageSpec([layer]))
    tar = layer_tar(layer)
    n = _gzip_prefix_of_size(tar, 1 << 20)
    blob = gzip.compress(tar[:n], compresslevel=0, mtime=0) + gzip.compress(tar[n:], mtime=0)

    # swap the layer blob for the two-member gzip one (same diff_id), re-pointing manifest and index
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_bytes())
    (blobs / hashlib.sha256(blob).hexdigest()).write_bytes(blob)
    manifest["layers"][0] = {
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": "sha256:" + hashlib.sha256(blob).hexdigest(),
        "size": len(blob),
    }
    raw_manifest = json.dumps(manifest).encode()
    (blobs / hashlib.sha256(raw_manifest).hexdigest()).write_bytes(raw_manifest)
    index["manifests"][0].update(digest="sha256:" + hashlib.sha256(raw_manifest).hexdigest(), size=len(raw_manifest))
    (layout / "index.json").write_text(json.dumps(index))

    report = scan(cli, layout)
    loc = only_location(report, token)
    assert (loc["layer_index"], loc["path"], loc["line"]) == (0, "/data/conf.txt", 2)
    assert loc["layer_digest"] == diff_id(layer)
    assert report["images"][0]["files_scanned"] == 2

#!/usr/bin/env python3
"""Growth benchmark on hostile inputs (`make bench-hostile`): tiny inputs built so that a scanner
with any super-linear step (quadratic in path depth, exponential in an index graph, Env x history,
per-file memory, links x secrets) hangs or runs out of memory.

    python bench/hostile.py [--only NAME ...] [--timeout 300] [--rss-cap-mb 3000] [--secretscan CMD]

Each growth class is built at 1x and 10x size in a temporary directory, by a child process (on
Linux a child's ru_maxrss starts from its parent's RSS at fork, so this process stays small), and
scanned by the real CLI (`secretscan scan REF -f json -q --show-secrets`) as a child process, one
at a time. Measured per run: wall time (perf_counter around Popen + os.wait4) and peak RSS (wait4's
ru_maxrss). The child's RSS is also sampled every 50 ms: a run past --rss-cap-mb or --timeout is
killed and shown as such, so a regression cannot take the machine down. Each run must still
report its planted secret. --secretscan measures another build (to compare before and after).

Printed: one row per class with the input size, both times, the 10x/1x time ratio and both peak
RSS figures. Targets: time ratio <= 12 (linear, with room for noise and the fixed start-up cost)
and peak RSS < 1.5 GB; a row missing either, or a planted secret, is flagged and the exit status
is 1.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import mmap
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import secretgen  # noqa: E402

SECRETSCAN = ROOT / ".venv" / "bin" / "secretscan"
TARGET_TIME_RATIO = 12.0
TARGET_RSS_MB = 1500.0
MB = 1_000_000

# ----------------------------------------------------------------------------- tar writing
# Written by hand (not with tarfile), so that a million headers take seconds to make.


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _header(name: bytes, size: int = 0, kind: bytes = b"0", mode: int = 0o644, linkname: bytes = b"") -> bytes:
    h = bytearray(512)
    h[0 : len(name)] = name
    h[157 : 157 + len(linkname)] = linkname
    h[100:108] = _octal(mode, 8)
    h[108:116] = _octal(0, 8)
    h[116:124] = _octal(0, 8)
    h[124:136] = _octal(size, 12)
    h[136:148] = _octal(0, 12)
    h[148:156] = b" " * 8
    h[156:157] = kind
    h[257:265] = b"ustar\x0000"
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 512)


def tar_member(name: str, data: bytes = b"", kind: bytes = b"0", linkname: str = "") -> bytes:
    """One member; a name over 100 bytes goes in a PAX extended header, as GNU tar writes it."""
    raw = name.encode()
    out = b""
    if len(raw) > 100:
        record = b" path=" + raw + b"\n"
        length = len(record) + len(str(len(record)))
        length = len(record) + len(str(length))
        pax = str(length).encode() + record
        out = _header(b"././@PaxHeader", len(pax), b"x") + _pad(pax)
        raw = raw[-100:].lstrip(b"/") or b"x"
    return out + _header(raw, len(data), kind, 0o755 if kind == b"5" else 0o644, linkname.encode()) + _pad(data)


END = b"\0" * 1024


def token_file(secret: str) -> bytes:
    return f"token: {secret}\n".encode()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def docker_archive(path: Path, layers: list[bytes], config: dict[str, Any] | None = None) -> Path:
    """A docker-archive (classic layout): gzip layer blobs as given, their diff IDs in the config."""
    diff_ids = [_sha(gzip.decompress(blob)) for blob in layers]
    cfg = {"architecture": "amd64", "os": "linux", **(config or {})}
    cfg["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
    members = {
        "manifest.json": json.dumps([{"Config": "c.json", "Layers": [f"l{i}.tar" for i in range(len(layers))]}]),
        "c.json": json.dumps(cfg),
    }
    with open(path, "wb") as f:
        for name, text in members.items():
            f.write(tar_member(name, text.encode()))
        for i, blob in enumerate(layers):
            f.write(tar_member(f"l{i}.tar", blob))
        f.write(END)
    return path


def gzip_layer(parts: Iterator[bytes]) -> bytes:
    """A gzip layer blob from tar member bytes (level 1: the bench builds big ones quickly)."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0) as gz:
        for part in parts:
            gz.write(part)
        gz.write(END)
    return out.getvalue()


# ----------------------------------------------------------------------------- OCI layouts


def _blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = _sha(data)
    (layout / "blobs" / "sha256" / digest[7:]).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def oci_image(layout: Path, secret: str) -> dict[str, Any]:
    """A one-layer image with the secret in /app/token.txt: its manifest descriptor."""
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    layer = gzip_layer(iter([tar_member("app/token.txt", token_file(secret))]))
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    config["rootfs"]["diff_ids"] = [_sha(gzip.decompress(layer))]
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            **_blob(layout, json.dumps(config).encode()),
        },
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_blob(layout, layer)}],
    }
    return {"mediaType": manifest["mediaType"], **_blob(layout, json.dumps(manifest).encode())}


def oci_index(layout: Path, children: list[dict[str, Any]]) -> dict[str, Any]:
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": children}
    return {"mediaType": index["mediaType"], **_blob(layout, json.dumps(index).encode())}


def write_index_json(layout: Path, children: list[dict[str, Any]]) -> None:
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": children}
    (layout / "index.json").write_text(json.dumps(doc))


# ----------------------------------------------------------------------------- the growth classes


@dataclass(frozen=True)
class Built:
    reference: str
    secret: str
    input_bytes: int


@dataclass(frozen=True)
class GrowthClass:
    name: str
    unit: str
    small: int
    build: Callable[[Path, int], Built]
    """(empty directory, size) -> the input; the 10x run builds it with 10 * small."""


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def deep_path(tmp: Path, depth: int) -> Built:
    """A secret in a file ``depth`` directories deep; a later layer deletes the top directory."""
    secret = secretgen.github_pat(depth)
    name = "d/" * depth + "token.txt"
    first = gzip_layer(iter([tar_member(name, token_file(secret))]))
    second = gzip_layer(iter([tar_member(".wh.d")]))
    path = docker_archive(tmp / "image.tar", [first, second])
    return Built(f"docker-archive:{path}", secret, _size(path))


def index_fanout(tmp: Path, fanout: int) -> Built:
    """index.json and four nested indexes, each listing the next level ``fanout`` times; the last
    lists one image: fanout**5 paths through a graph of a few KB."""
    layout = tmp / "layout"
    secret = secretgen.github_pat(fanout)
    desc = oci_image(layout, secret)
    for _ in range(4):
        desc = oci_index(layout, [desc] * fanout)
    write_index_json(layout, [desc] * fanout)
    return Built(f"oci:{layout}", secret, _size(layout))


def index_chain(tmp: Path, length: int) -> Built:
    """A healthy image beside a chain of ``length`` nested indexes (past the nesting limit)."""
    layout = tmp / "layout"
    secret = secretgen.github_pat(length)
    healthy = oci_image(layout, secret)
    desc = oci_image(layout, secretgen.github_pat(length + 1))
    for _ in range(length):
        desc = oci_index(layout, [desc])
    write_index_json(layout, [healthy, desc])
    return Built(f"oci:{layout}", secret, _size(layout))


def env_history(tmp: Path, n: int) -> Built:
    """``n`` Env entries, each set by its own ENV step: ``n`` history steps."""
    secret = secretgen.github_pat(n)
    env = [f"VAR_{i}=value{i}" for i in range(n)] + [f"GITHUB_TOKEN={secret}"]
    history = [{"created_by": f"/bin/sh -c #(nop)  ENV {e}", "empty_layer": True} for e in env]
    history.append({"created_by": "/bin/sh -c #(nop) ADD file:x in /"})
    layer = gzip_layer(iter([tar_member("etc/os-release", b"ID=bench\n")]))
    path = docker_archive(tmp / "image.tar", [layer], {"config": {"Env": env}, "history": history})
    return Built(f"docker-archive:{path}", secret, _size(path))


def many_env(tmp: Path, n: int) -> Built:
    """``n`` short Env entries and one with a secret, a few history steps."""
    secret = secretgen.github_pat(n)
    env = [f"V{i}=1" for i in range(n)] + [f"GITHUB_TOKEN={secret}"]
    history = [{"created_by": "/bin/sh -c #(nop) ADD file:x in /"}, {"created_by": "ENV V0=1", "empty_layer": True}]
    layer = gzip_layer(iter([tar_member("etc/os-release", b"ID=bench\n")]))
    path = docker_archive(tmp / "image.tar", [layer], {"config": {"Env": env}, "history": history})
    return Built(f"docker-archive:{path}", secret, _size(path))


def empty_files(tmp: Path, n: int) -> Built:
    """``n`` empty files (a thousand per directory), then a file with a secret."""
    secret = secretgen.github_pat(n)

    def members() -> Iterator[bytes]:
        for i in range(n):
            yield _header(b"d%d/f%d" % (i // 1000, i))
        yield tar_member("zz/token.txt", token_file(secret))

    path = docker_archive(tmp / "image.tar", [gzip_layer(members())])
    return Built(f"docker-archive:{path}", secret, _size(path))


def many_layers(tmp: Path, n: int) -> Built:
    """A base layer with a file of ``n`` tokens, then one small blob listed as ``n`` more layers:
    ``n`` occurrences, each with ``n`` later layers to consult for its fate."""
    secrets = [secretgen.github_pat(i) for i in range(n)]
    base = gzip_layer(iter([tar_member("app/tokens.txt", "".join(f"token: {s}\n" for s in secrets).encode())]))
    other = gzip_layer(iter([tar_member("srv/readme.txt", b"nothing here\n")]))
    diff_ids = [_sha(gzip.decompress(base))] + [_sha(gzip.decompress(other))] * n
    cfg = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    cfg["history"] = [{"created_by": f"COPY . /srv/ # {i}"} for i in range(n + 1)]
    members = {
        "manifest.json": json.dumps([{"Config": "c.json", "Layers": ["base.tar"] + ["l.tar"] * n}]).encode(),
        "c.json": json.dumps(cfg).encode(),
        "base.tar": base,
        "l.tar": other,
    }
    path = tmp / "image.tar"
    with open(path, "wb") as f:
        for name, data in members.items():
            f.write(tar_member(name, data))
        f.write(END)
    return Built(f"docker-archive:{path}", secrets[-1], _size(path))


def many_members(tmp: Path, n: int) -> Built:
    """A docker-archive with ``n`` extra (empty) members beside its image: the archive index."""
    secret = secretgen.github_pat(n)
    layer = gzip_layer(iter([tar_member("app/token.txt", token_file(secret))]))
    path = docker_archive(tmp / "image.tar", [layer])
    with open(path, "r+b") as f:
        f.seek(-len(END), os.SEEK_END)
        for i in range(n):
            f.write(_header(b"junk/%d" % i))
        f.write(END)
    return Built(f"docker-archive:{path}", secret, _size(path))


def many_matches(tmp: Path, n: int) -> Built:
    """One file of ``n`` lines, each a different token: ``n`` findings from one scan window."""
    secrets = [secretgen.github_pat(i) for i in range(n)]
    text = "".join(f"token: {s}\n" for s in secrets).encode()
    path = docker_archive(tmp / "image.tar", [gzip_layer(iter([tar_member("app/tokens.txt", text)]))])
    return Built(f"docker-archive:{path}", secrets[-1], _size(path))


def history_secrets(tmp: Path, n: int) -> Built:
    """``n`` ENV steps, each setting a different password (the Env entries say the same): every
    build step shown in the report is masked against every secret of the image."""
    secrets = ["".join(c for c in secretgen.password(i) if c.isalnum()) + "9!" for i in range(n)]
    env = [f"DB{i}_PASSWORD={s}" for i, s in enumerate(secrets)]
    history = [{"created_by": f"ENV {e}", "empty_layer": True} for e in env]
    history.append({"created_by": "/bin/sh -c #(nop) ADD file:x in /"})
    layer = gzip_layer(iter([tar_member("etc/os-release", b"ID=bench\n")]))
    path = docker_archive(tmp / "image.tar", [layer], {"config": {"Env": env}, "history": history})
    return Built(f"docker-archive:{path}", secrets[-1], _size(path))


def hardlink_fanout(tmp: Path, n: int) -> Built:
    """A file of ``n`` tokens and ``n`` hard links to it: each link ships every token again."""
    secrets = [secretgen.github_pat(i) for i in range(n)]
    text = "".join(f"token: {s}\n" for s in secrets).encode()

    def members() -> Iterator[bytes]:
        yield tar_member("app/tokens.txt", text)
        for i in range(n):
            yield tar_member(f"app/link{i}", kind=b"1", linkname="app/tokens.txt")

    path = docker_archive(tmp / "image.tar", [gzip_layer(members())])
    return Built(f"docker-archive:{path}", secrets[-1], _size(path))


CLASSES = [
    GrowthClass("deep-path", "dirs", 5_000, deep_path),
    GrowthClass("index-fanout", "fan-out", 64, index_fanout),
    GrowthClass("index-chain", "indexes", 100, index_chain),
    GrowthClass("env-x-history", "Env+steps", 3_000, env_history),
    GrowthClass("many-env", "Env", 100_000, many_env),
    GrowthClass("empty-files", "files", 100_000, empty_files),
    GrowthClass("many-layers", "layers and tokens", 1_000, many_layers),
    GrowthClass("archive-members", "members", 50_000, many_members),
    GrowthClass("many-matches", "tokens in a file", 2_000, many_matches),
    GrowthClass("history-secrets", "ENV steps", 1_000, history_secrets),
    GrowthClass("hardlink-fanout", "tokens and links", 100, hardlink_fanout),
]


# ----------------------------------------------------------------------------- running


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    status: str
    """``ok``, ``missed`` (the planted secret not reported), ``exit N``, ``killed (...)``."""


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_scan(built: Built, command: str, timeout: float, rss_cap_mb: float) -> Run:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [command, "scan", built.reference, "-f", "json", "-q", "--show-secrets"], stdout=out, stderr=err
        )
        killed = None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            elapsed = time.perf_counter() - started
            if elapsed > timeout:
                killed = f"killed after {timeout:.0f} s"
            elif _rss_mb(proc.pid) > rss_cap_mb:
                killed = f"killed at {rss_cap_mb:.0f} MB"
            if killed:
                proc.send_signal(signal.SIGKILL)
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait for it again
        peak = usage.ru_maxrss / 1024
        if killed:
            return Run(seconds, peak, killed)
        if os.fstat(out.fileno()).st_size == 0:
            err.seek(0)
            return Run(seconds, peak, f"exit {proc.returncode}: {err.read().decode().strip()[:80]}")
        # searched in place, not parsed: a report of 20,000 findings parsed here would grow this
        # process, and with it the ru_maxrss of the next child
        with mmap.mmap(out.fileno(), 0, access=mmap.ACCESS_READ) as report:
            found = report.find(json.dumps({"secret": built.secret})[1:-1].encode()) >= 0
        return Run(seconds, peak, "ok" if found else f"missed (exit {proc.returncode})")


def build_in_child(cls: GrowthClass, size: int, tmp: Path) -> Built:
    done = subprocess.run(
        [sys.executable, __file__, "--build", cls.name, str(size), str(tmp)], check=True, capture_output=True, text=True
    )
    return Built(**json.loads(done.stdout))


def _row(cls: GrowthClass, runs: list[Run]) -> tuple[list[str], bool]:
    small, large = runs
    ratio = large.seconds / small.seconds if small.seconds else float("inf")
    statuses = {small.status, large.status}
    good = statuses == {"ok"} and ratio <= TARGET_TIME_RATIO and max(r.peak_rss_mb for r in runs) < TARGET_RSS_MB
    status = "ok" if statuses == {"ok"} else "; ".join(f"{s}" for s in (small.status, large.status))
    cells = [
        cls.name,
        f"{cls.small:,} / {cls.small * 10:,} {cls.unit}",
        f"{small.seconds:.2f}",
        f"{large.seconds:.2f}",
        f"{ratio:.1f}",
        f"{small.peak_rss_mb:.0f}",
        f"{large.peak_rss_mb:.0f}",
        status + ("" if good else "  <-- FLAG"),
    ]
    return cells, good


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=[c.name for c in CLASSES], help="run only these classes")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a run is killed")
    parser.add_argument("--rss-cap-mb", type=float, default=3000.0, help="RSS at which a run is killed")
    parser.add_argument(
        "--secretscan", default=str(SECRETSCAN), help="the command to measure (another build, to compare)"
    )
    parser.add_argument("--build", nargs=3, metavar=("CLASS", "SIZE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build:  # the child that writes one input
        name, size, directory = args.build
        [cls] = [c for c in CLASSES if c.name == name]
        print(json.dumps(vars(cls.build(Path(directory), int(size)))))
        return 0
    chosen = [c for c in CLASSES if not args.only or c.name in args.only]
    header = ["class", "size 1x / 10x", "1x s", "10x s", "10x/1x", "1x MB", "10x MB", "status"]
    rows, all_good = [], True
    for cls in chosen:
        runs = []
        sizes = []
        for size in (cls.small, cls.small * 10):
            with tempfile.TemporaryDirectory(prefix="secretscan-hostile-") as tmp:
                built = build_in_child(cls, size, Path(tmp))
                sizes.append(built.input_bytes)
                runs.append(run_scan(built, args.secretscan, args.timeout, args.rss_cap_mb))
        cells, good = _row(cls, runs)
        all_good &= good
        rows.append(cells)
        print(f"{cls.name}: inputs {sizes[0] / MB:.2f} MB / {sizes[1] / MB:.2f} MB; " + " ".join(cells[2:]), flush=True)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print()
    for r in [header, ["-" * w for w in widths], *rows]:
        print(
            "  ".join(
                c.ljust(w) if i in (0, 1, 7) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    print(
        f"\ntargets: 10x/1x time <= {TARGET_TIME_RATIO:.0f}, peak RSS < {TARGET_RSS_MB:.0f} MB, planted secret reported"
    )
    return 0 if all_good else 1


if __name__ == "__main__":
    sys.exit(main())

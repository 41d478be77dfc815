#!/usr/bin/env python3
"""Registry sweep benchmark (`make bench-sweep`): a real docker-registry on loopback, filled with
images that share base layers the way a company registry does, swept twice.

    python bench/sweep.py [--repos 20] [--tags 10] [--jobs 2]

Layout: 4 base layers ("distros", ~8 MB of text each), one layer per repository (~2 MB, its
dependencies), one layer per tag (~0.5 MB, the application), every 7th tag with a planted secret.
With 20 repositories x 10 tags that is 200 images, 600 layer references and 224 unique layers.

Printed: the first sweep of half the repositories and of all of them (each into a fresh
database), so the time can be set against unique layers and against layer references; the
second sweep of all of them (the cached re-run); images/s. Every sweep runs as a child process,
as a user runs it. Targets: first-sweep time proportional to unique layers; second sweep < 10 s.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import secretgen  # noqa: E402
import servers  # noqa: E402
from imagebuilder import Entry, Layer, layer_tar  # noqa: E402
from registry_push import Pusher  # noqa: E402

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "config",
    "service",
    "request",
    "handler",
    "module",
    "package",
    "version",
    "build",
    "release",
    "cache",
    "index",
    "server",
    "client",
    "token_count",
    "session",
    "logger",
    "metrics",
    "buffer",
    "stream",
    "channel",
    "worker",
]


def text_blob(rng: random.Random, size: int) -> bytes:
    """Config-like text lines drawn from a pool (fast to make, compresses like real text)."""
    pool = _line_pool(rng.randint(0, 7))
    out = "".join(rng.choices(pool, k=size // 60 + 1)) + f"# {rng.getrandbits(64):x}\n"
    return out.encode()


_POOLS: dict[int, list[str]] = {}


def _line_pool(n: int) -> list[str]:
    if n not in _POOLS:
        rng = random.Random(n)
        _POOLS[n] = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))) + f" = {rng.randint(0, 10**6)}\n"
            for _ in range(4096)
        ]
    return _POOLS[n]


def layer(
    rng: random.Random, prefix: str, size: int, files: int, extra: list[Entry] | None = None
) -> tuple[bytes, bytes, str]:
    """(tar, gzip blob, build step), built once however many images share the layer."""
    entries = [Entry(f"{prefix}/f{i:04d}.txt", text_blob(rng, size // files)) for i in range(files)]
    tar = layer_tar(Layer(entries + (extra or [])))
    return tar, gzip.compress(tar, compresslevel=1, mtime=0), f"/bin/sh -c #(nop) COPY dir:{prefix} in /{prefix}"


def fill(pusher: Pusher, repos: int, tags: int, seed: int) -> tuple[int, int]:
    """Push the images; return (images, planted secrets)."""
    rng = random.Random(seed)
    bases = [layer(rng, f"usr/share/base{b}", 8_000_000, 200) for b in range(4)]
    images = planted = 0
    for r in range(repos):
        deps = layer(rng, f"opt/deps{r}", 2_000_000, 50)
        for t in range(tags):
            extra = []
            if (r * tags + t) % 7 == 0:
                extra = [
                    Entry(f"app/r{r}t{t}/.env", f"GITHUB_TOKEN={secretgen.github_pat(seed + r * 1000 + t)}\n".encode())
                ]
                planted += 1
            app = layer(rng, f"app/r{r}t{t}", 500_000, 10, extra)
            parts = [bases[r % 4], deps, app]
            pusher.prepared(f"team{r:02d}/service", f"v{t}", [(p[0], p[1]) for p in parts], [p[2] for p in parts])
            images += 1
    return images, planted


def sweep(host: str, db: Path, jobs: int, repos: list[str] | None = None) -> tuple[float, dict[str, int], int]:
    argv = [sys.executable, "-c", "import sys; from secretscan.cli import main; sys.exit(main())", "sweep", host]
    argv += ["--db", str(db), "-j", str(jobs), "-f", "json", "-o", str(db.with_suffix(".json"))]
    for repo in repos or []:
        argv += ["--repo", repo]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"sweep failed ({done.returncode}):\n{done.stderr}")
    summary = json.loads(
        __import__("sqlite3").connect(db).execute("SELECT summary FROM sweeps ORDER BY id DESC LIMIT 1").fetchone()[0]
    )
    findings = len(json.loads(db.with_suffix(".json").read_text())["findings"])
    return elapsed, summary, findings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=20)
    parser.add_argument("--tags", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as td, servers.registry(Path(td), auth="none") as info:
        os.environ["XDG_CACHE_HOME"] = str(Path(td) / "cache")
        t0 = time.perf_counter()
        images, planted = fill(Pusher(info.host), args.repos, args.tags, args.seed)
        print(
            f"registry filled: {images} images in {args.repos} repositories, {planted} planted secrets "
            f"({time.perf_counter() - t0:.1f} s)"
        )
        half = [f"team{r:02d}/service" for r in range(args.repos // 2)]
        sweep(info.host, Path(td) / "warm-up.db", args.jobs, half[:1])  # compiles the rule pack once (cached)
        t_half, s_half, _ = sweep(info.host, Path(td) / "half.db", args.jobs, half)
        t_first, s_first, found = sweep(info.host, Path(td) / "full.db", args.jobs)
        t_second, s_second, found2 = sweep(info.host, Path(td) / "full.db", args.jobs)

        def row(name: str, t: float, s: dict[str, int]) -> str:
            return (
                f"{name:28} {t:7.2f} s  images {s['images']:4} ({s['images_scanned']} scanned, "
                f"{s['images_cached']} cached, {s['images_failed']} failed)  layers: {s['layer_references']} refs, "
                f"{s['layers_unique']} unique, {s['layers_scanned']} scanned, {s['layers_cached']} cached  "
                f"{s['images'] / t:6.1f} images/s"
            )

        print(row("first sweep, half the repos", t_half, s_half))
        print(row("first sweep, all repos", t_first, s_first))
        print(row("second sweep, all repos", t_second, s_second))
        unique_ratio = s_first["layers_scanned"] / max(1, s_half["layers_scanned"])
        refs_ratio = s_first["layer_references"] / max(1, s_half["layer_references"])
        time_ratio = t_first / t_half
        print(
            f"first sweep: unique layers x{unique_ratio:.2f}, layer references x{refs_ratio:.2f}, time x{time_ratio:.2f} "
            f"(half -> all); {t_first / max(1, s_first['layers_scanned']) * 1000:.0f} ms per unique layer"
        )
        db = __import__("sqlite3").connect(Path(td) / "full.db")
        unique_mb = db.execute("SELECT sum(bytes) FROM layer_cache").fetchone()[0] / 1e6
        referenced_mb = (
            db.execute(
                "SELECT sum(c.bytes) FROM image_layers l JOIN layer_cache c ON c.digest = l.digest "
                "WHERE l.manifest_digest IN (SELECT manifest_digest FROM images WHERE sweep = 1)"
            ).fetchone()[0]
            / 1e6
        )
        print(
            f"bytes: {unique_mb:.0f} MB of unique layers scanned in the first sweep "
            f"({unique_mb / t_first:.0f} MB/s); the images reference {referenced_mb:.0f} MB, "
            f"which a per-image scanner would read"
        )
        print(f"findings: {found} (first), {found2} (second), planted {planted}")
        ok = t_second < 10 and found == found2 == planted and s_second["layers_scanned"] == 0
        print(
            "targets: second sweep < 10 s: "
            + ("met" if t_second < 10 else "NOT met")
            + "; same findings both sweeps and all planted found: "
            + ("yes" if found == found2 == planted else "NO")
        )
        if not ok:
            raise SystemExit(1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Build the synthetic image that `make bench` scans: realistic, large, offline and deterministic.

    python bench/make_image.py OUT.tar --size-mb 500 [--seed N]

Why synthetic: a benchmark has to run offline and scan the same bytes every time, and a real image
of 0.5-2 GB can be neither committed nor downloaded in CI. So this script imitates what secretscan
meets in practice, by uncompressed bytes (roughly):

* ~25% ELF-like executables and shared libraries (skewed "machine code", string tables, padding);
* ~15% Python site-packages (.py from templates, .pyc-like binaries, dist-info METADATA/RECORD);
* ~15% node_modules (package.json, many small .js files, minified bundles with very long lines);
* ~10% files that are already compressed (.gz changelogs, .whl, .jar with nested jars, .tgz);
* ~35% a few big logs and data files (50-200 MB each in the 500 MB image: log lines, a CSV, a
  binary data file), which is where a scanner's per-byte cost and memory show;

plus near-misses that must not be reported (UUIDs, sha256 digests, lockfile integrity hashes,
`password = os.environ[...]`, certificates and public keys) and sixteen planted secrets of
varied kinds in hard places: deep inside the big files (one straddling secretscan's 8 MiB chunk
boundary), in a jar nested in a jar, in a .tgz, in an ELF string table, a PEM private key, a file
a later layer deletes, the config Env and a history ARG. `OUT.tar.planted.json` lists them by the
sha256 of their value, with where they are; bench/run.py checks the scan report against it.

Why streamed: the 2 GB variant must not be built in memory (tests/imagebuilder.py builds whole
layers as bytes). Each layer is written by `tarfile` in stream mode through a sha256 (the diff_id)
into a gzip compressor (isal's igzip when installed, which is several times faster than zlib)
through a second sha256 (the blob digest) into a temporary file next to the output; big files are
produced in ~1 MiB blocks. The output is the Docker 25+ `docker save` layout (an OCI layout with
`index.json` and `oci-layout`, plus `manifest.json` pointing at `blobs/sha256/...`), but with
gzip-compressed layer blobs, as pulled from a registry: that is what makes the gzip floor of
bench/run.py meaningful.

Why deterministic: every file's content comes from random.Random seeded with (seed, path), shared
pools from (seed, pool name); mtimes are fixed, members sorted, gzip headers carry no time or name.
The same seed and size give the same uncompressed layers (diff_ids); with the same compressor they
give the same archive byte for byte. Big files repeat sampled lines and byte pools rather than
calling the random generator per line: the 500 MB image takes about 11 s to build on one core.

Where the code is: this script assembles the image (config, manifests, the archive) and is the
command line; what goes into the layers is made by the package bench/synth/, one module per job
(see its __init__ for the layering).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import secretgen as gen  # noqa: E402
from imagebuilder import EPOCH, MT_OCI_CONFIG, MT_OCI_INDEX, MT_OCI_LAYER, MT_OCI_MANIFEST  # noqa: E402
from synth.layers.app import layer_app, layer_cleanup, layer_env_file  # noqa: E402
from synth.layers.bigdata import layer_data, layer_logs  # noqa: E402
from synth.layers.debian import layer_apt, layer_base  # noqa: E402
from synth.layers.node import layer_node  # noqa: E402
from synth.layers.python import layer_python  # noqa: E402
from synth.model import Build, LayerPlan, LayerResult  # noqa: E402
from synth.params import MiB  # noqa: E402
from synth.pools import Pools  # noqa: E402
from synth.tarwrite import COMPRESSOR, HAVE_ISAL, tarinfo, write_layer  # noqa: E402
from synth.values import sha256_hex  # noqa: E402

REPO_TAG = "secretscan/bench"


def build_image(out: Path, size_mb: int, seed: int) -> dict[str, Any]:
    """Plan and write the layers one by one, then the archive; return the planted.json content."""
    t0 = time.perf_counter()
    build = Build(pools=Pools(seed), seed=seed, target=size_mb * MiB)
    t_pools = time.perf_counter() - t0
    build.gh_token = gen.github_fine_grained(build.secret_seed(8))
    pypi = gen.pypi_token(build.secret_seed(14))
    arg, env = f"ARG GH_TOKEN={build.gh_token}", f"ENV PYPI_TOKEN={pypi}"
    # the build steps in order: a history entry each; a planner for those that make a layer
    steps: list[str | Callable[[Build], LayerPlan]] = [
        layer_base,
        '/bin/sh -c #(nop)  CMD ["bash"]',
        arg,
        layer_apt,  # its RUN line repeats the ARG value
        "ENV PYTHON_VERSION=3.11.9",
        layer_python,
        layer_env_file,
        layer_node,
        layer_app,
        layer_cleanup,
        env,
        layer_logs,
        layer_data,
        "WORKDIR /app",
        'CMD ["python" "-m" "shopapp"]',
    ]
    env_list = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PYTHON_VERSION=3.11.9", env[4:]]
    i_arg, i_env = steps.index(arg), steps.index(env)
    build.plant(build.gh_token, "github.fine-grained-pat", f"config: history[{i_arg}].created_by (ARG) and history[{i_arg + 1}].created_by (RUN)")  # fmt: skip
    build.plant(pypi, "pypi.upload-token", f"config: config.Env[{len(env_list) - 1}] and history[{i_env}].created_by (ENV)")  # fmt: skip
    history: list[dict[str, Any]] = []
    layers: list[LayerResult] = []
    try:
        for step in steps:
            if isinstance(step, str):
                history.append({"created": EPOCH, "created_by": step, "empty_layer": True})
                continue
            build.layer = len(layers)
            plan = step(build)
            blob = out.parent / f".{out.name}.layer{len(layers)}.tmp"
            res = write_layer(plan, blob, build)
            layers.append(res)
            history.append({"created": EPOCH, "created_by": plan.created_by})
            print(
                f"  layer {len(layers) - 1}: {res.files:6d} files  {res.uncompressed_size / 1e6:8.1f} MB -> {res.size / 1e6:7.1f} MB gz  {res.seconds:5.1f} s  {plan.created_by[:60]}",
                flush=True,
            )
        config = json_bytes(
            {
                "architecture": "amd64",
                "os": "linux",
                "created": EPOCH,
                "config": {
                    "Env": env_list,
                    "Cmd": ["python", "-m", "shopapp"],
                    "WorkingDir": "/app",
                },
                "rootfs": {"type": "layers", "diff_ids": [ly.diff_id for ly in layers]},
                "history": history,
            }
        )
        write_archive(out, config, layers, f"{REPO_TAG}:{size_mb}")
    finally:
        for ly in layers:
            ly.blob.unlink(missing_ok=True)
    meta = {
        "image": f"{REPO_TAG}:{size_mb}",
        "seed": seed,
        "size_mb": size_mb,
        "uncompressed_bytes": sum(ly.uncompressed_size for ly in layers),
        "compressed_bytes": sum(ly.size for ly in layers),
        "compressor": COMPRESSOR,
        "content_bytes": dict(sorted(build.by_kind.items())),
        "layers": [
            {
                "index": i,
                "created_by": ly.created_by,
                "digest": ly.digest,
                "diff_id": ly.diff_id,
                "size": ly.size,
                "uncompressed_size": ly.uncompressed_size,
                "files": ly.files,
            }
            for i, ly in enumerate(layers)
        ],
        "secrets": [p.record() for p in build.planted],
        "generation_seconds": round(time.perf_counter() - t0, 1),
        "pools_seconds": round(t_pools, 1),
    }
    return meta


def json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def write_archive(out: Path, config: bytes, layers: list[LayerResult], ref: str) -> None:
    """The Docker 25+ `docker save` layout with gzip blobs, written to OUT.partial then renamed."""
    cfg_digest = "sha256:" + sha256_hex(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_OCI_MANIFEST,
        "config": {"mediaType": MT_OCI_CONFIG, "digest": cfg_digest, "size": len(config)},
        "layers": [{"mediaType": MT_OCI_LAYER["gzip"], "digest": ly.digest, "size": ly.size} for ly in layers],
    }
    man_bytes = json_bytes(manifest)
    man_digest = "sha256:" + sha256_hex(man_bytes)
    name, tag = ref.rsplit(":", 1)
    index = {
        "schemaVersion": 2,
        "mediaType": MT_OCI_INDEX,
        "manifests": [
            {
                "mediaType": MT_OCI_MANIFEST,
                "digest": man_digest,
                "size": len(man_bytes),
                "annotations": {
                    "io.containerd.image.name": f"docker.io/{name}:{tag}",
                    "org.opencontainers.image.ref.name": tag,
                },
            }
        ],
    }
    docker_manifest = [
        {
            "Config": "blobs/sha256/" + cfg_digest[7:],
            "RepoTags": [ref],
            "Layers": ["blobs/sha256/" + ly.digest[7:] for ly in layers],
        }
    ]
    members: dict[str, bytes | Path] = {
        "blobs/sha256/" + cfg_digest[7:]: config,
        "blobs/sha256/" + man_digest[7:]: man_bytes,
        "index.json": json_bytes(index),
        "manifest.json": json_bytes(docker_manifest),
        "oci-layout": json_bytes({"imageLayoutVersion": "1.0.0"}),
    }
    for ly in layers:
        members["blobs/sha256/" + ly.digest[7:]] = ly.blob
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w", format=tarfile.USTAR_FORMAT) as tf:
        for d in ("blobs/", "blobs/sha256/"):
            tf.addfile(tarinfo(d, mode=0o755, type_=tarfile.DIRTYPE))
        for member, src in sorted(members.items()):
            if isinstance(src, Path):
                with open(src, "rb") as f:
                    tf.addfile(tarinfo(member, src.stat().st_size), f)
            else:
                tf.addfile(tarinfo(member, len(src)), io.BytesIO(src))
    os.replace(partial, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("out", type=Path, help="docker-archive to write (OUT.tar.planted.json is written next to it)")
    ap.add_argument("--size-mb", type=int, default=500, help="uncompressed size in MiB (default 500; at least 40)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if args.size_mb < 40:
        ap.error("--size-mb must be at least 40 (the big files need room for their plants)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"building {args.out} ({args.size_mb} MiB uncompressed, seed {args.seed}, gzip by {'isal' if HAVE_ISAL else 'zlib'})",
        flush=True,
    )
    meta = build_image(args.out, args.size_mb, args.seed)
    planted = args.out.with_name(args.out.name + ".planted.json")
    planted.write_text(json.dumps(meta, indent=2) + "\n")
    total = meta["uncompressed_bytes"]
    print(
        f"wrote {args.out}: {len(meta['layers'])} gzip layers, {total / 1e6:.1f} MB uncompressed, {meta['compressed_bytes'] / 1e6:.1f} MB compressed, in {meta['generation_seconds']} s"
    )
    print(
        "content by kind: "
        + ", ".join(f"{k} {v / total:.1%}" for k, v in sorted(meta["content_bytes"].items(), key=lambda kv: -kv[1]))
    )
    print(f"wrote {planted}: {len(meta['secrets'])} planted secrets")
    return 0


if __name__ == "__main__":
    sys.exit(main())

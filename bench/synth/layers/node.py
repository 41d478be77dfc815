"""The npm layer: node_modules, the lockfile, the app's minified bundle and vendored tarballs.

Two secrets live here: a Slack webhook in the middle of the bundle's one long line, and an npm
token in the .npmrc packed into the first vendored .tgz. Lockfile integrity hashes are near-misses.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from functools import partial
from typing import Any

import secretgen as gen

from ..contents import big_file, npm_tgz
from ..model import Build, Files, LayerPlan
from ..params import COMPRESSED_SPLIT, KiB, MiB
from ..pools import Pools
from ..values import hexstr, lognormal, version
from ..vocab import NODE_PACKAGES


def layer_node(build: Build) -> LayerPlan:
    """node_modules (package.json, small .js, minified bundles), package-lock.json (integrity
    hashes), the app's own bundle (a Slack webhook in a long line) and vendored .tgz tarballs."""
    pools, rng = build.pools, build.rng("plan/node")
    budget = build.budget("node")
    files = Files(build, "node")
    bundle_size = max(MiB, budget // 40)
    webhook = gen.slack_webhook(build.secret_seed(11))
    bundle = f"app/public/static/js/main.{hexstr(rng, 4)}.js"
    at = bundle_size // 2
    stmt = f';var Hk="{webhook}";'
    build.plant(webhook, "slack.webhook-url", f"/{bundle} byte {at + stmt.index(webhook)} (minified, one long line)")
    files.gen(bundle, big_file(js_bundle_blocks, pools, bundle_size, [(at, stmt.encode())], text=False))
    lock: dict[str, Any] = {}
    total = bundle_size
    names = list(NODE_PACKAGES)
    while total < budget:
        name = names.pop(0) if names else "-".join(rng.choices(pools.words, k=rng.randint(1, 2))) + str(rng.randint(0, 99))  # fmt: skip
        if f"node_modules/{name}" in lock:
            continue
        ver, base = version(rng), f"app/node_modules/{name}"
        lock[f"node_modules/{name}"] = {
            "version": ver,
            "resolved": f"https://registry.npmjs.org/{name}/-/{name.split('/')[-1]}-{ver}.tgz",
            "integrity": "sha512-" + base64.b64encode(rng.randbytes(64)).decode(),  # a near-miss
        }
        pkg_json = {"name": name, "version": ver, "description": pools.sentence(rng), "main": "index.js", "license": "MIT",
                    "repository": {"type": "git", "url": f"git+https://github.com/{rng.choice(pools.words)}/{name}.git"},
                    "dependencies": {d: "^" + version(rng) for d in rng.sample(NODE_PACKAGES, rng.randint(0, 4))}}  # fmt: skip
        files.add(f"{base}/package.json", json.dumps(pkg_json, indent=2) + "\n")
        files.gen(f"{base}/README.md", lambda r: pools.text(r, r.randint(500, 12000)).encode(), key=base + "/README")
        files.add(
            f"{base}/LICENSE",
            "MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy...\n",
        )
        pkg_total = 8 * KiB
        for j in range(rng.randint(1, 25)):
            size = lognormal(rng, 4 * KiB, 1.0, 200, 120 * KiB)
            files.gen(f"{base}/{'index' if j == 0 else 'lib/' + rng.choice(pools.idents) + str(j)}.js", partial(js_file, pools, size=size))  # fmt: skip
            pkg_total += size
        if rng.random() < 0.3:
            size = lognormal(rng, 200 * KiB, 1.2, 10 * KiB, 4 * MiB)
            files.gen(
                f"{base}/dist/{name.split('/')[-1]}.min.js", big_file(js_bundle_blocks, pools, size, [], text=False)
            )
            pkg_total += size
        total += pkg_total
    lockfile = {"name": "shop", "version": "1.0.0", "lockfileVersion": 3, "requires": True, "packages": lock}
    files.add("app/package-lock.json", json.dumps(lockfile, indent=2, sort_keys=True) + "\n")
    files.add(
        "app/package.json",
        json.dumps({"name": "shop", "version": "1.0.0", "private": True, "scripts": {"build": "webpack"}}, indent=2)
        + "\n",
    )
    files += vendored_tgz(build)
    return LayerPlan("RUN /bin/sh -c cd /app && npm ci && npm run build # buildkit", files.specs)


def js_file(pools: Pools, rng: random.Random, size: int) -> bytes:
    return pools.js_source(rng, size).encode()


def js_bundle_blocks(pools: Pools, rng: random.Random) -> Iterator[bytes]:
    return pools.js_bundle_chunks(rng)


def vendored_tgz(build: Build) -> Files:
    """`npm pack` tarballs; the first picked up the developer's .npmrc with an npm token."""
    rng = build.rng("plan/tgz")
    budget = build.budget("compressed", COMPRESSED_SPLIT["tgz"])
    files = Files(build, "compressed")
    npm = gen.npm_token(build.secret_seed(10))
    total, i = 0, 0
    while total < budget:
        target = min(lognormal(rng, 400 * KiB, 0.9, 20 * KiB, 5 * MiB), budget - total + KiB)
        name = rng.choice(build.pools.words) + f"-{rng.choice(build.pools.words)}{i}"
        path = f"app/vendor/{name}-{version(rng)}.tgz"
        extra = None
        if i == 0:
            build.plant(npm, "npm.access-token", f"/{path}!package/.npmrc")
            extra = {"package/.npmrc": f"registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken={npm}\n".encode()}  # fmt: skip
        files.gen(path, partial(npm_tgz, build, name=name, target=target, extra=extra))
        total += target
        i += 1
    return files

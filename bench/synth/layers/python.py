"""The pip layer: site-packages as pip leaves them, the app's settings, and pip's wheel cache.

Two secrets live here: a SECRET_KEY in the app's settings.py and a GitLab token in a module of
the first cached wheel (a secret inside a zip). RECORD digests are the high-entropy near-misses.
"""

from __future__ import annotations

import base64
import random
import struct
from functools import partial

import secretgen as gen

from ..contents import wheel_bytes
from ..model import Build, Files, LayerPlan
from ..params import COMPRESSED_SPLIT, MTIME, SITE, KiB, MiB
from ..pools import Pools
from ..secret_values import safe_password
from ..values import hexstr, lognormal, version
from ..vocab import PY_PACKAGES

WHEEL = "Wheel-Version: 1.0\nGenerator: bdist_wheel (0.42.0)\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def layer_python(build: Build) -> LayerPlan:
    """site-packages (sources, .pyc, dist-info), the app's settings (a SECRET_KEY), the pip wheel cache."""
    pools, rng = build.pools, build.rng("plan/python")
    budget = build.budget("python")
    files = Files(build, "python")
    total = 0
    names = list(PY_PACKAGES)
    used = {"shopapp"}
    while total < budget:
        pkg = names.pop(0) if names else rng.choice(pools.idents) + str(rng.randint(0, 99))
        if pkg in used:
            continue
        used.add(pkg)
        ver = version(rng)
        pkg_target = min(lognormal(rng, 500 * KiB, 1.0, 20 * KiB, 12 * MiB), budget - total + 4 * KiB)
        pkg_total = 0
        modules: list[str] = ["__init__"]
        while pkg_total < pkg_target:
            mod = rng.choice(["", "", f"{rng.choice(pools.idents)}/"]) + rng.choice(pools.idents)
            if mod in modules:
                continue
            modules.append(mod)
            size = lognormal(rng, 9 * KiB, 1.1, 300, 400 * KiB)
            head, _, stem = mod.rpartition("/")
            pycache = f"{SITE}/{pkg}/{head + '/' if head else ''}__pycache__"
            files.gen(f"{SITE}/{pkg}/{mod}.py", partial(python_file, pools, size=size, module=mod))
            files.gen(f"{pycache}/{stem}.cpython-311.pyc", partial(pyc_bytes, pools, size=size))
            pkg_total += int(size * 2.1)  # the .py and its .pyc
        files.add(f"{SITE}/{pkg}/__init__.py", f'"""{pkg}."""\n\n__version__ = "{ver}"\n')
        dist = f"{SITE}/{pkg}-{ver}.dist-info"
        files.gen(f"{dist}/METADATA", partial(metadata, pools, pkg=pkg, ver=ver), key=dist + "/M")
        files.gen(f"{dist}/RECORD", partial(record, pkg=pkg, modules=tuple(modules)), key=dist + "/R")
        files.add(f"{dist}/WHEEL", WHEEL)
        files.add(f"{dist}/INSTALLER", "pip\n")
        files.add(f"{dist}/top_level.txt", f"{pkg}\n")
        total += pkg_total
    settings = f"{SITE}/shopapp/settings.py"
    secret_key = build.plant(safe_password(build, 15), "generic.secret-assignment", f"/{settings} (SECRET_KEY = ...)")
    files.add(
        settings,
        '"""Django settings for shopapp."""\n\nimport os\n\nDEBUG = False\nALLOWED_HOSTS = ["shop.example.com"]\n'
        f'SECRET_KEY = "{secret_key}"\n'
        'DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "PASSWORD": os.environ["DB_PASSWORD"]}}\n',
    )
    files += pip_cache(build)
    return LayerPlan("RUN /bin/sh -c pip install -r requirements.txt # buildkit", files.specs)


def python_file(pools: Pools, rng: random.Random, size: int, module: str) -> bytes:
    return pools.python_source(rng, size, module).encode()


def pyc_bytes(pools: Pools, rng: random.Random, size: int) -> bytes:
    body = pools.slices(rng, pools.code, int(size * 0.45), piece=4 * KiB)
    names = b"".join(b"\xda" + bytes([len(s) % 256]) + s for s in rng.choices(pools.strings, k=max(1, size // 60)))
    return b"\xa7\x0d\x0d\x0a" + bytes(4) + struct.pack("<II", MTIME, size) + b"\xe3" + body + names


def metadata(pools: Pools, rng: random.Random, pkg: str, ver: str) -> bytes:
    reqs = "".join(f"Requires-Dist: {rng.choice(PY_PACKAGES)}>={version(rng)}\n" for _ in range(rng.randint(0, 6)))
    return (
        f"Metadata-Version: 2.1\nName: {pkg}\nVersion: {ver}\nSummary: {pools.sentence(rng)}\n"
        f"Home-page: https://github.com/{rng.choice(pools.words)}/{pkg}\nLicense: MIT\n{reqs}\n"
        + pools.text(rng, rng.randint(1000, 12000))
    ).encode()


def record(rng: random.Random, pkg: str, modules: tuple[str, ...]) -> bytes:
    """RECORD lines carry urlsafe-base64 sha256 digests: high-entropy near-misses."""
    lines = []
    for m in modules:
        digest = base64.urlsafe_b64encode(rng.randbytes(32)).rstrip(b"=").decode()
        lines.append(f"{pkg}/{m}.py,sha256={digest},{rng.randint(200, 90000)}\n")
    return "".join(lines).encode()


def pip_cache(build: Build) -> Files:
    """Wheels in pip's cache; the first carries a GitLab token in a module."""
    rng = build.rng("plan/wheels")
    budget = build.budget("compressed", COMPRESSED_SPLIT["wheels"])
    files = Files(build, "compressed")
    glpat = gen.gitlab_pat(build.secret_seed(9))
    total, i = 0, 0
    while total < budget:
        target = min(lognormal(rng, 600 * KiB, 0.9, 40 * KiB, 6 * MiB), budget - total + KiB)
        name = rng.choice(build.pools.idents) + str(i)
        d = hexstr(rng, 28)
        path = f"root/.cache/pip/wheels/{d[:2]}/{d[2:4]}/{d[4:]}/{name}-{version(rng)}-py3-none-any.whl"
        extra = None
        if i == 0:
            build.plant(glpat, "gitlab.personal-access-token", f"/{path}!{name}/_ci.py")
            extra = (f"{name}/_ci.py", f'"""CI helper."""\n\nGITLAB_TOKEN = "{glpat}"\nPROJECT = "{name}"\n')
        files.gen(path, partial(wheel_bytes, build, name=name, target=target, extra=extra))
        total += target
        i += 1
    return files

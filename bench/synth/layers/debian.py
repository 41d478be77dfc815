"""The Debian-like OS layers: the base root filesystem and the apt-get install on top of it.

Binaries and shared libraries (the image's ELF share), /etc files, CA certificates and an SSH
host public key (near-misses), and per package the copyright, changelog.Debian.gz and dpkg data.
"""

from __future__ import annotations

import random
from functools import partial

from ..contents import changelog_gz, elf_bytes
from ..model import Build, Files, LayerPlan
from ..params import COMPRESSED_SPLIT, KiB, MiB
from ..pools import Pools
from ..values import hexstr, lognormal, pem_block, ssh_public_key, version
from ..vocab import BIN_NAMES, DEB_PACKAGES, LIB_NAMES

OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'
PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\napp:x:1000:1000::/app:/bin/sh\n"
)


def plan_binaries(build: Build, tag: str, budget: int) -> Files:
    """Executables in bin dirs and shared libraries in the multiarch lib dir, lognormal sizes."""
    rng, idents = build.rng(f"plan/{tag}"), build.pools.idents
    names = list(BIN_NAMES) if tag == "base" else []
    libs = list(LIB_NAMES) if tag == "base" else []
    files = Files(build, "binaries")
    total = 0
    while total < budget:
        size = min(lognormal(rng, 56 * KiB, 1.4, 6 * KiB, 7 * MiB), budget - total + 8 * KiB)
        if rng.random() < 0.45:
            stem = libs.pop(0) if libs else idents[rng.randrange(len(idents))].replace("_", "-")
            path, shared = f"usr/lib/x86_64-linux-gnu/lib{stem}.so.{rng.randint(0, 9)}", True
        else:
            stem = names.pop(0) if names else idents[rng.randrange(len(idents))].replace("_", "-")
            path, shared = f"{rng.choice(['usr/bin', 'usr/bin', 'usr/sbin', 'usr/libexec/' + tag])}/{stem}", False
        if path in files:
            continue
        files.gen(path, partial(elf_bytes, build.pools, size=size, shared=shared), mode=0o755)
        total += size
    return files


def layer_base(build: Build) -> LayerPlan:
    """A Debian-like root: binaries, libraries, /etc, certificates (near-misses), docs, dpkg data."""
    pools, rng = build.pools, build.rng("plan/base-extra")
    files = plan_binaries(build, "base", build.budget("binaries", 0.6))
    certs = []
    for i in range(140):
        certs.append(pem_block("CERTIFICATE", rng.randbytes(rng.randint(700, 1400))))
        files.add(
            f"usr/share/ca-certificates/mozilla/{rng.choice(pools.classes)}_Root_CA_{i}.crt", certs[-1], kind="os"
        )
    files.add("etc/ssl/certs/ca-certificates.crt", "".join(certs), kind="os")
    files.add("etc/ssh/ssh_host_ed25519_key.pub", ssh_public_key(rng, "root@buildkitsandbox"), kind="os")
    files.add("etc/os-release", OS_RELEASE, kind="os")
    files.add("etc/debian_version", "12.5\n", kind="os")
    files.add("etc/hostname", "buildkitsandbox\n", kind="os")
    files.add("etc/passwd", PASSWD, kind="os")
    files.add("etc/group", "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\napp:x:1000:\n", kind="os")
    files += debian_docs(build, DEB_PACKAGES[: len(DEB_PACKAGES) * 2 // 3], "base")
    return LayerPlan("/bin/sh -c #(nop) ADD file:" + hexstr(rng, 32) + " in / ", files.specs)


def debian_docs(build: Build, packages: list[str], tag: str) -> Files:
    """copyright files, changelog.Debian.gz (the changelog part of the compressed share), dpkg data."""
    pools, rng = build.pools, build.rng(f"plan/docs/{tag}")
    per_pkg = build.budget("compressed", COMPRESSED_SPLIT["changelog"]) // len(DEB_PACKAGES)
    files = Files(build, "os")
    status = []
    for pkg in packages:
        target = lognormal(rng, per_pkg, 0.8, 512, per_pkg * 8)
        doc = f"usr/share/doc/{pkg}"
        files.gen(f"{doc}/changelog.Debian.gz", partial(changelog_gz, pools, pkg=pkg, target=target), kind="compressed", key=f"doc/{pkg}/cl")  # fmt: skip
        files.gen(f"{doc}/copyright", lambda r: pools.text(r, r.randint(1000, 20000)).encode(), key=f"doc/{pkg}/cr")
        files.gen(f"var/lib/dpkg/info/{pkg}.md5sums", partial(md5sums, pools, pkg=pkg), key=f"doc/{pkg}/md5")
        status.append(
            f"Package: {pkg}\nStatus: install ok installed\nPriority: optional\nInstalled-Size: {rng.randint(20, 9000)}\n"
            f"Maintainer: Debian Developers <debian-devel@lists.debian.org>\nArchitecture: amd64\nVersion: {version(rng)}-1\n"
            f"Description: {pools.sentence(rng)}\n {pools.paragraph(rng, 2)}\n\n"
        )
    files.add("var/lib/dpkg/status" if tag == "base" else f"var/lib/dpkg/status-{tag}", "".join(status))
    return files


def md5sums(pools: Pools, rng: random.Random, pkg: str) -> bytes:
    """dpkg's md5sums list: hex digests, near-misses for entropy-based detectors."""
    return "".join(f"{hexstr(rng, 16)}  usr/share/{pkg}/{w}\n" for w in rng.sample(pools.words, 20)).encode()


def layer_apt(build: Build) -> LayerPlan:
    """apt-get install: more libraries and tools. The RUN line shows the ARG value, as docker records it."""
    files = plan_binaries(build, "apt", build.budget("binaries", 0.4))
    files += debian_docs(build, DEB_PACKAGES[len(DEB_PACKAGES) * 2 // 3 :], "apt")
    return LayerPlan(
        f"|1 GH_TOKEN={build.gh_token} /bin/sh -c apt-get update && apt-get install -y --no-install-recommends"
        " ca-certificates curl libpq5 && rm -rf /var/lib/apt/lists/*",
        files.specs,
    )

"""File contents that take more than a template: ELF binaries, archives, and big streamed files.

Every maker takes a seeded random.Random (and the shared pools) and returns bytes, or for the big
files a Streamed of exact size whose chunks are produced while the tar member is written. Planted
secrets are placed by the callers (synth.layers) through the `extra`/`nested`/`plants` arguments.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import struct
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator

from .model import Build, Content, Streamed
from .params import ZIP_TIME, KiB
from .pools import Pools
from .tarwrite import tarinfo
from .values import lognormal, version

# ----------------------------------------------------------------------------- ELF


def elf_bytes(pools: Pools, rng: random.Random, size: int, shared: bool, extra: list[bytes] | None = None) -> bytes:
    """An ELF64 x86-64 header, then skewed 'code', a NUL-separated string table (where `extra`
    strings are placed), zero padding and high-entropy data (like .eh_frame/.debug sections)."""
    fields = (3 if shared else 2, 0x3E, 1, 0x1000 + rng.randrange(1 << 16), 64, size - 4096, 0, 64, 56, 13, 64, 30, 29)
    header = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHIQQQIHHHHHH", *fields)
    code = pools.slices(rng, pools.code, int(size * 0.6))
    strtab = pools.string_table(rng, int(size * 0.22), extra)
    pad = bytes(int(size * 0.06))
    rest = max(0, size - len(header) - len(code) - len(strtab) - len(pad))
    out = header + code + strtab + pad + pools.slices(rng, pools.noise, rest)
    return out[:size] if not extra else out  # never cut off a planted string


# ----------------------------------------------------------------------------- compressed files


def deterministic_gzip(data: bytes, level: int = 6) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


def zip_add(z: zipfile.ZipFile, name: str, data: bytes, stored: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    z.writestr(info, data, compresslevel=None if stored else 6)


def changelog_gz(pools: Pools, rng: random.Random, pkg: str, target: int) -> bytes:
    """A Debian changelog.Debian.gz of about `target` compressed bytes."""
    entries = []
    n = 0
    while n < target * 4:  # prose compresses about 4:1 at level 9
        entry = (
            f"{pkg} ({version(rng)}-{rng.randint(1, 9)}) unstable; urgency=medium\n\n"
            + "".join(f"  * {pools.sentence(rng)}\n" for _ in range(rng.randint(1, 6)))
            + f"\n -- {rng.choice(pools.classes)} <{rng.choice(pools.words)}@debian.org>  Mon, 0{rng.randint(1, 9)} Jan 2024 10:00:00 +0100\n\n"
        )
        entries.append(entry)
        n += len(entry)
    return deterministic_gzip("".join(entries).encode(), 9)


def wheel_bytes(build: Build, rng: random.Random, name: str, target: int, extra: tuple[str, str] | None) -> bytes:
    """A .whl (zip) of generated modules, about `target` bytes; `extra` is (member, text) to include."""
    buf = io.BytesIO()
    ver = version(rng)
    with zipfile.ZipFile(buf, "w") as z:
        if extra:
            zip_add(z, extra[0], extra[1].encode())
        i = 0
        while buf.tell() < target:
            mod = rng.choice(build.pools.idents)
            src = build.pools.python_source(rng, lognormal(rng, 12 * KiB, 1.0, 1 * KiB, 200 * KiB), mod)
            zip_add(z, f"{name}/{mod}_{i}.py", src.encode())
            i += 1
        zip_add(
            z, f"{name}-{ver}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\n".encode()
        )
        zip_add(
            z,
            f"{name}-{ver}.dist-info/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: bdist_wheel (0.42.0)\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
    return buf.getvalue()


def class_file(pools: Pools, rng: random.Random, cls: str) -> bytes:
    body = pools.slices(rng, pools.code, lognormal(rng, 3 * KiB, 1.0, 400, 60 * KiB), piece=2 * KiB)
    consts = b"\x01".join(rng.choices(pools.strings, k=rng.randint(10, 80)))
    return b"\xca\xfe\xba\xbe\x00\x00\x00\x41" + cls.encode() + b"\x00" + consts + body


def jar_bytes(
    build: Build,
    rng: random.Random,
    group: str,
    target: int,
    nested: dict[str, bytes] | None = None,
    extra: dict[str, bytes] | None = None,
) -> bytes:
    """A jar of .class files (deflated) of about `target` bytes; `nested` jars are STORED under
    BOOT-INF/lib/ as in a Spring Boot fat jar."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        zip_add(
            z,
            "META-INF/MANIFEST.MF",
            b"Manifest-Version: 1.0\nCreated-By: Maven JAR Plugin 3.3.0\nBuild-Jdk-Spec: 17\n",
        )
        for name, data in sorted((extra or {}).items()):
            zip_add(z, name, data)
        for name, data in sorted((nested or {}).items()):
            zip_add(z, f"BOOT-INF/lib/{name}", data, stored=True)
        seen: set[str] = set()
        while buf.tell() < target:
            cls = rng.choice(build.pools.classes)
            name = f"{group.replace('.', '/')}/{rng.choice(build.pools.words)}/{cls}"
            data = class_file(build.pools, rng, cls)
            member, n = f"{name}.class", 0
            while member in seen:  # a name drawn twice: call it an inner class, Name$1.class
                n += 1
                member = f"{name}${n}.class"
            seen.add(member)
            zip_add(z, member, data)
    return buf.getvalue()


def npm_tgz(build: Build, rng: random.Random, name: str, target: int, extra: dict[str, bytes] | None = None) -> bytes:
    """An `npm pack` tarball (package/...) of about `target` compressed bytes."""
    buf = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tf,
    ):
        files = {
            "package/package.json": json.dumps(
                {"name": name, "version": version(rng), "main": "index.js"}, indent=2
            ).encode()
        }
        files.update(extra or {})
        for path, data in sorted(files.items()):
            tf.addfile(tarinfo(path, len(data)), io.BytesIO(data))
        i = 0
        while buf.tell() < target:
            data = build.pools.js_source(rng, lognormal(rng, 8 * KiB, 1.0, 500, 100 * KiB)).encode()
            tf.addfile(tarinfo(f"package/lib/{rng.choice(build.pools.idents)}_{i}.js", len(data)), io.BytesIO(data))
            i += 1
    return buf.getvalue()


# ----------------------------------------------------------------------------- big files


def planted_stream(size: int, blocks: Iterator[bytes], plants: list[tuple[int, bytes]], text: bool) -> Iterator[bytes]:
    """Exactly `size` bytes from `blocks`, with each plant starting exactly at its offset.

    In text mode plants are whole lines: the byte before a plant becomes a newline and the block
    after it resumes at its next line; the file ends with a newline. Plants must not overlap.
    """
    pending = sorted(plants)
    pos = 0
    for block in blocks:
        while block:
            if pending and pending[0][0] < pos + len(block):
                off, data = pending.pop(0)
                cut = off - pos
                if cut < 0:
                    raise AssertionError(f"plant at {off} overlaps the previous one")
                head = block[:cut]
                if head:
                    yield head[:-1] + b"\n" if text else head
                yield data
                pos = off + len(data)
                block = block[cut:]
                if text:
                    block = block[block.find(b"\n") + 1 :] if b"\n" in block else b""
                continue
            if pos + len(block) >= size:
                tail = block[: size - pos]
                yield tail[:-1] + b"\n" if text else tail
                return
            yield block
            pos += len(block)
            break
    raise AssertionError("block source ended early")


def big_file(
    blocks: Callable[[Pools, random.Random], Iterator[bytes]],
    pools: Pools,
    size: int,
    plants: list[tuple[int, bytes]],
    text: bool,
) -> Callable[[random.Random], Content]:
    """A streamed file of exactly `size` bytes from a block generator, with plants (see planted_stream)."""
    return lambda rng: Streamed(size, planted_stream(size, blocks(pools, rng), plants, text))


def log_blocks(pools: Pools, rng: random.Random) -> Iterator[bytes]:
    """~1 MiB blocks of log lines with ascending timestamps (lines sampled from the pool)."""
    t = 1_717_200_000.0
    while True:
        msgs = rng.choices(pools.log_msgs, k=7000)
        lines = []
        for i, m in enumerate(msgs):
            if i % 100 == 0:
                tm = time.gmtime(t)
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", tm)
                t += rng.random() * 4
            lines.append(f"{stamp}.{i % 1000:03d}Z {m}")
        yield "".join(lines).encode()


def csv_blocks(pools: Pools, rng: random.Random) -> Iterator[bytes]:
    yield b"event_id,occurred_at,user_id,session_id,ip,country,amount_cents,currency,sku,status,payload_sha256,user_agent\n"
    while True:
        yield "".join(rng.choices(pools.csv_rows, k=4000)).encode()


def binary_blocks(pools: Pools, rng: random.Random) -> Iterator[bytes]:
    """Records of a columnar-ish data file: a header naming columns, then float-like noise,
    code-like skewed bytes and zero runs."""
    yield b"FEAT\x02\x00\x00\x00" + struct.pack("<Q", 0)
    n = 0
    while True:
        cols = b",".join(w.encode() for w in rng.choices(pools.words, k=8))
        header = b"REC\x00" + struct.pack("<QI", n, len(cols)) + cols
        yield (
            header
            + pools.slices(rng, pools.noise, 640 * KiB)
            + pools.slices(rng, pools.code, 256 * KiB)
            + bytes(128 * KiB)
        )
        n += 1

"""Read a ``docker save`` stream in one pass, without seeking and without temp files.

A save stream puts layers before the manifest that says which image uses them in which order, so
each layer is read as it passes (a ``LayerReader`` scans it then, or holds it and scans it later:
a layer's scan does not depend on its position) and attributed once ``manifest.json`` arrives at
the end. Small JSON members (configs, manifests) are kept in
memory; nothing is written to disk. A stream without ``manifest.json`` but with an OCI layout's
``oci-layout`` and ``index.json`` (an ``oci-archive`` tar) is attributed through its index, as an
OCI layout on disk is.

A stream cut short (a pipe from ``docker save`` that failed, a partial download) loses what was
not read, never what was: the layers read are kept and, when the manifest never came, reported as
one image with its layers in the order they came (``ScannedImage.problem`` says so).
"""

from __future__ import annotations

import io
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO, Protocol, cast

from secretscan.errors import SecretScanError, SourceError, SourceLimitReached
from secretscan.image.compression import read_some
from secretscan.image.entries import EntryKind, FileEntry
from secretscan.image.model import Image, ImageConfig, LayerFacts, parse_save_manifest
from secretscan.sources.oci import OciLayout, blob_name
from secretscan.walk.fate import LayerPaths
from secretscan.walk.layer import LayerResult
from secretscan.walk.tarstream import iter_tar

MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_METADATA_BYTES = 64 * 1024 * 1024
"""All JSON members kept together (a save stream's configs and manifests are KiBs): the memory a
stream of many JSON-looking members can take."""
_METADATA = {"manifest.json", "index.json", "oci-layout", "repositories"}
_MAX_PASSED = 10_000
_PIECE = 1 << 20
_NO_METADATA = "the archive ends without manifest.json (docker save) or oci-layout and index.json (an OCI layout)"


@dataclass
class StreamedImage:
    name: str
    digest: str | None
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class SaveStream:
    """A ``docker save`` stream to be read once, and what its source knows of it beforehand."""

    label: str
    """The reference it was asked for: names the images and every error."""
    reader: BinaryIO
    wanted: str | None = None
    """The tag of the image wanted from the stream (a stream may hold several)."""
    total_bytes: int = 0
    layers: int = 0


@dataclass
class ScannedImage:
    """One image of a stream, its layers already scanned: what attribution takes."""

    image: StreamedImage
    config: ImageConfig
    layers: list[LayerFacts]
    results: list[LayerResult]
    problem: str | None = None
    """What went wrong with the stream or this image beyond its layers' own errors (the stream was
    cut short, the image's config is missing): an error of the run, named after the stream."""


class LayerReader(Protocol):
    """How the layers of a stream are scanned: each as it passes, or some held (in memory) and
    scanned later, side by side (``scan.Scanner.scan_stream``)."""

    def take(self, blob: BinaryIO, size: int) -> int:
        """Read the layer ``blob`` (``size`` bytes as stored) to its end or its first failure; a
        key to its result."""
        ...

    def results(self) -> dict[int, LayerResult]:
        """Every layer's result by key, once the stream has been read or has broken off."""
        ...


def read_save_stream(stream: BinaryIO, layers: LayerReader, label: str, wanted: str | None = None) -> list[ScannedImage]:
    """Read every layer of a ``docker save`` stream with ``layers`` as it passes, and give the
    images the stream holds (only the image tagged ``wanted`` when given and present) with their
    layers' results. Raises ``SourceError`` only when no layer could be read: otherwise what went
    wrong is a ``problem`` of the first image, and the layers read are kept."""
    seen = _Seen()
    broke: str | None = None
    failed: SourceError | None = None
    try:
        for entry in iter_tar(stream):  # walk.tarstream: the layers' own reader, a slice per read
            seen.take(entry, layers, label)
    except (tarfile.TarError, EOFError, OSError) as exc:
        kind = "ReadError" if isinstance(exc, tarfile.ReadError) else type(exc).__name__  # (its TarDamage too)
        broke = f"{kind}: {str(exc)[:120]}"
    except SourceError as exc:
        failed = exc
    found = layers.results()
    seen.results = {name: found[key] for name, key in seen.keys.items()}
    problem = None
    if broke is not None:
        if not seen.members:
            raise SourceError(f"{label}: the docker save stream is unreadable ({broke})") from None
        problem = seen.cut_short(broke)
    if failed is not None:
        if not seen.results:
            raise failed
        problem = _unlabelled(failed, label)
    return _images(seen, label, wanted, problem)


@dataclass
class _Seen:
    """What one pass over the stream keeps: small JSON members whole, layers as their results."""

    small: dict[str, bytes] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)
    """Layer member -> the key to its result (``LayerReader.take``), in the order the layers came."""
    results: dict[str, LayerResult] = field(default_factory=dict)
    """Layer member -> its result, once the pass is over."""
    sizes: dict[str, int] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    named: set[str] = field(default_factory=set)
    """The layers a ``manifest.json`` that came first names (a hand-made archive's may be called anything)."""
    passed: set[str] = field(default_factory=set)
    """Members passed over as not layers, by name (at most ``_MAX_PASSED``): for the error when a
    manifest that came later names one."""
    members: int = 0
    kept: int = 0
    last: str | None = None
    """The last member met: the one being read when the stream broke, if it broke in a layer."""

    def take(self, entry: FileEntry, layers: LayerReader, label: str) -> None:
        self.members += 1
        name = self.last = entry.path.lstrip("/")
        if entry.kind is EntryKind.SYMLINK:
            self.links[name] = _norm(posixpath.join(posixpath.dirname(name), entry.link_target))
            return
        if entry.kind is EntryKind.HARDLINK:
            self.links[name] = _norm(entry.link_target)
            return
        if entry.kind is not EntryKind.FILE or entry.open is None:
            return
        f = _Latched(entry.open())
        head = f.read(512)
        if name in _METADATA or (head.lstrip()[:1] in (b"{", b"[") and entry.size <= MAX_JSON_BYTES):
            self.small[name] = head + f.read(MAX_JSON_BYTES)
            self.kept += len(self.small[name])
            if self.kept > MAX_METADATA_BYTES:
                raise SourceError(
                    f"{label}: more than {MAX_METADATA_BYTES} bytes of JSON members: not a docker save stream"
                )
            if name == "manifest.json":
                self.named = _named_layers(self.small[name])
        elif _is_layer(name) or name in self.named:
            self.sizes[name] = entry.size
            f.put_back(head)
            self.keys[name] = layers.take(cast(BinaryIO, f), entry.size)
        elif len(self.passed) < _MAX_PASSED:
            self.passed.add(name)

    def cut_short(self, why: str) -> str:
        """What to say of a stream that broke. A layer being read when it broke finds it unreadable
        (its files before the break are kept, and the digest of its part cannot match): that is
        folded into what is said of the stream, which names the cause once. Any other error of that
        layer (a daemon's failure, ``--timeout``) stays its own."""
        cut = self.results.get(self.last or "")
        if cut is not None and cut.error is not None and cut.error.startswith("unreadable layer"):
            cut.error, cut.stored_digest = None, None
            return f"the stream breaks off inside its last layer, whose files before the break were scanned ({why})"
        return f"the stream breaks off ({why})"


class _Latched(io.RawIOBase):
    """A member of the stream, read as it comes (``read1``: what is at hand, a slice of the
    stream's piece) or in full (``read``), that reads as ended once a read failed (the stream broke
    off): the layer's scan reports the failure once and keeps what it read, rather than meet a
    second, different failure while it drains the rest. No buffer of its own (a buffered reader
    between the stream's pieces and a held layer's memory cost a third of the copy's time)."""

    def __init__(self, member: BinaryIO) -> None:
        self._member, self._head, self._failed = member, b"", False

    def readable(self) -> bool:
        return True

    def put_back(self, head: bytes) -> None:
        """Read ``head`` again first (the bytes read to tell a layer from JSON)."""
        self._head = head + self._head

    def read1(self, n: int = -1) -> bytes:
        if n == 0:
            return b""
        if self._head:
            data = self._head if n < 0 else self._head[:n]
            self._head = self._head[len(data) :]
            return data
        if self._failed:
            return b""
        try:
            return read_some(self._member, _PIECE if n < 0 else min(n, _PIECE))
        except Exception:
            self._failed = True
            raise

    def read(self, n: int = -1) -> bytes:
        """``n`` bytes (all, for -1), fewer only at the end."""
        parts, left = [], n
        while left != 0 and (data := self.read1(left)):
            parts.append(data)
            left = max(0, left - len(data)) if n >= 0 else -1
        return b"".join(parts)

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _images(seen: _Seen, label: str, wanted: str | None, problem: str | None) -> list[ScannedImage]:
    """The images the stream's metadata describes, or, when it has none that can be read, its
    layers as one image (``_unattributed``)."""
    try:
        if "manifest.json" in seen.small:
            images = list(_saved_images(seen, label, wanted))
        elif {"oci-layout", "index.json"} <= seen.small.keys():
            images = list(_oci_images(seen, label))
        else:
            images = []
    except SecretScanError as exc:
        if not seen.results:
            raise
        problem = "; ".join(p for p in (problem, _unlabelled(exc, label)) if p)
        images = []
    if images:
        if problem is not None:
            first = images[0]
            said = f"{label}: {problem}: the rest of the stream was not read"
            first.problem = f"{said}; {first.problem}" if first.problem else said
        return images
    if seen.results:
        return [_unattributed(seen, label, problem)]
    if problem is not None:
        raise SourceError(f"{label}: {problem}, before any layer was read")
    raise SourceError(f"{label}: {_NO_METADATA}: not an image, or cut short")


def _saved_images(seen: _Seen, label: str, wanted: str | None) -> Iterator[ScannedImage]:
    entries = parse_save_manifest(seen.small["manifest.json"], f"{label}: manifest.json")
    if wanted is not None:
        tagged = [e for e in entries if wanted in e.tags]
        entries = tagged or entries[:1]
    for i, entry in enumerate(entries):
        config_name = _norm(entry.config)
        hexpart = posixpath.basename(config_name).removesuffix(".json")
        image = StreamedImage(
            entry.tags[0] if entry.tags else label if len(entries) == 1 else f"{label}@{i}",
            f"sha256:{hexpart}" if len(hexpart) == 64 else None,
        )
        problem = None
        try:  # without its config, an image's layers are still reported (without build steps)
            if config_name not in seen.small:
                raise SourceError(f"{label}: config {config_name} missing from the save stream")
            config = ImageConfig.parse(seen.small[config_name], f"{label}: config")
        except SourceError as exc:
            config, problem = _empty_config(label), str(exc)
        layers, layer_results = [], []
        for index, layer in enumerate(entry.layers):
            member = _norm(layer)
            for _ in range(8):
                member = seen.links.get(member, member)
            digest = f"sha256:{member.split('/')[-1]}" if member.startswith("blobs/sha256/") else None
            diff_id = config.diff_ids[index] if index < len(config.diff_ids) else None
            layers.append(LayerFacts(index, diff_id, digest))
            layer_results.append(_result(seen, member))
        yield ScannedImage(image, config, layers, layer_results, problem)


def _oci_images(seen: _Seen, label: str) -> Iterator[ScannedImage]:
    """The images of an OCI layout that came as a stream, found through its index by the code that
    reads layouts on disk (nested indexes, platforms, names); their layers were scanned as they
    passed. An image that cannot be read is reported by itself, the others are kept."""
    for image in OciLayout(_KeptBlobs(seen, label), label, None).images():
        identity = StreamedImage(image.name, image.digest, image.annotations)
        try:
            yield _oci_image(seen, image, identity)
        except SourceLimitReached as exc:
            yield ScannedImage(identity, _empty_config(label), [], [], f"{image.name}: not scanned: {exc}")
        except SecretScanError as exc:
            yield ScannedImage(identity, _empty_config(label), [], [], f"{image.name}: {exc}")


def _oci_image(seen: _Seen, image: Image, identity: StreamedImage) -> ScannedImage:
    config = image.config()
    layers, results = [], []
    for handle in image.layers():
        layers.append(handle.facts)
        member = blob_name(handle.blob_digest, image.name) if handle.blob_digest else ""
        results.append(_result(seen, member))
    return ScannedImage(identity, config, layers, results)


def _unattributed(seen: _Seen, label: str, problem: str | None) -> ScannedImage:
    """The layers of a stream whose metadata never came (``docker save`` writes its manifest last)
    or cannot be read: one image named after the stream, its layers numbered in the order they
    came. That need not be the image's order, so no layer is said to remove another's files, and
    no build step is named."""
    layers, results = [], []
    for index, (member, result) in enumerate(seen.results.items()):
        digest = f"sha256:{member.split('/')[-1]}" if member.startswith("blobs/sha256/") else None
        layers.append(LayerFacts(index, None, digest, seen.sizes.get(member)))
        results.append(replace(result, paths=LayerPaths()))
    if problem is None:
        why = f"{_NO_METADATA} (cut short? docker save writes its manifest last)"
    elif "manifest.json" not in seen.small:
        why = f"{problem}, before its manifest.json (docker save writes it last)"
    else:
        why = problem
    told = (
        f"{label}: {why}: the {len(results)} layer(s) read are reported in the order they came, without "
        "build steps, and without what later layers remove"
    )
    return ScannedImage(StreamedImage(label, None), _empty_config(label), layers, results, told)


def _result(seen: _Seen, member: str) -> LayerResult:
    found = seen.results.get(member)
    if found is not None:
        return found
    if member in seen.passed:
        return LayerResult(
            error=f"layer blob {member} came before manifest.json under a name that does not say it is a layer "
            "(docker save writes <id>/layer.tar or blobs/sha256/<digest>): not scanned"
        )
    return LayerResult(error=f"layer blob {member} missing from the save stream")


def _named_layers(manifest: bytes) -> set[str]:
    """The layer members a ``manifest.json`` names, or none if it cannot be read (which is said
    when the images are attributed)."""
    try:
        return {_norm(layer) for entry in parse_save_manifest(manifest, "manifest.json") for layer in entry.layers}
    except SourceError:
        return set()


def _unlabelled(exc: SecretScanError, label: str) -> str:
    return str(exc).removeprefix(f"{label}: ")


def _empty_config(label: str) -> ImageConfig:
    return ImageConfig.parse(b"{}", label)


class _KeptBlobs:
    """The stream's members as an OCI layout's blob store, after the pass: JSON members readable
    (indexes, manifests, configs), layers known by name and size only, for they are gone."""

    def __init__(self, seen: _Seen, label: str) -> None:
        self._seen, self._label = seen, label

    def has(self, name: str) -> bool:
        return name in self._seen.small or name in self._seen.results

    def size(self, name: str) -> int:
        small = self._seen.small.get(name)
        return len(small) if small is not None else self._seen.sizes.get(name, 0)

    def read(self, name: str, limit: int) -> bytes:
        data = self._seen.small.get(name)
        if data is None:
            raise SourceError(f"{self._label}: {name} missing from the stream")
        if len(data) > limit:
            raise SourceError(f"{self._label}: {name} is over the {limit}-byte limit")
        return data

    def open(self, name: str) -> Any:
        raise SourceError(f"{self._label}: {name} was read as it passed and cannot be read again")


def _is_layer(name: str) -> bool:
    """A member that holds a layer (``<id>/layer.tar``, or a blob that is not JSON metadata)."""
    return name.endswith("/layer.tar") or name.startswith("blobs/")


def _norm(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")

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
from secretscan.image.compression import prefixed, read_some
from secretscan.image.model import Image, ImageConfig, LayerFacts, parse_save_manifest
from secretscan.sources.oci import OciLayout, blob_name
from secretscan.walk.fate import LayerPaths
from secretscan.walk.layer import LayerResult
from secretscan.walk.tarstream import each_member

MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_METADATA_BYTES = 64 * 1024 * 1024
"""All JSON members kept together (a save stream's configs and manifests are KiBs): the memory a
stream of many JSON-looking members can take."""
_METADATA = {"manifest.json", "index.json", "oci-layout", "repositories"}
_MAX_PASSED = 10_000
_PIECE = 64 * 1024
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
        tar = tarfile.open(fileobj=stream, mode="r|")  # noqa: SIM115 - the stream belongs to the caller
        for member in each_member(tar):
            seen.take(tar, member, layers, label)
    except (tarfile.TarError, EOFError, OSError) as exc:
        broke = f"{type(exc).__name__}: {str(exc)[:120]}"
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

    def take(self, tar: tarfile.TarFile, member: tarfile.TarInfo, layers: LayerReader, label: str) -> None:
        self.members += 1
        name = self.last = _norm(member.name)
        if member.issym() or member.islnk():
            target = member.linkname if member.islnk() else posixpath.join(posixpath.dirname(name), member.linkname)
            self.links[name] = _norm(target)
            return
        if not member.isfile():
            return
        opened = tar.extractfile(member)
        if opened is None:
            return
        # tarfile's own buffer is bypassed (its raw member reader): reads go in pieces (``_Latched``)
        f = io.BufferedReader(_Latched(cast(BinaryIO, getattr(opened, "raw", opened))), _PIECE)
        head = f.read(512)
        if name in _METADATA or (head.lstrip()[:1] in (b"{", b"[") and member.size <= MAX_JSON_BYTES):
            self.small[name] = head + f.read(MAX_JSON_BYTES)
            self.kept += len(self.small[name])
            if self.kept > MAX_METADATA_BYTES:
                raise SourceError(
                    f"{label}: more than {MAX_METADATA_BYTES} bytes of JSON members: not a docker save stream"
                )
            if name == "manifest.json":
                self.named = _named_layers(self.small[name])
        elif _is_layer(name) or name in self.named:
            self.sizes[name] = member.size
            self.keys[name] = layers.take(prefixed(head, f), member.size)
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
    """A layer member of the stream, read in pieces of at most ``_PIECE`` bytes, that reads as ended
    once a read failed (the stream broke off): the layer's scan reports the failure once and keeps
    what it read, rather than meet a second, different failure (the tar reader cannot seek back)
    while it drains the rest. The tar reader gives all of a read or nothing, so small pieces keep
    the bytes just in front of a break."""

    def __init__(self, member: BinaryIO) -> None:
        self._member, self._failed = member, False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._failed:
            return 0
        try:
            data = read_some(self._member, min(len(buffer), _PIECE))
        except Exception:
            self._failed = True
            raise
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

"""Read a ``docker save`` stream in one pass, without seeking and without temp files.

A save stream puts layers before the manifest that says which image uses them in which order, so
each layer is scanned as it passes (a layer's scan does not depend on its position) and attributed
once ``manifest.json`` arrives at the end. Small JSON members (configs, manifests) are kept in
memory; nothing is written to disk.
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from secretscan.errors import SourceError
from secretscan.image.compression import prefixed
from secretscan.image.model import ImageConfig, LayerFacts, parse_save_manifest
from secretscan.walk.layer import LayerResult
from secretscan.walk.tarstream import each_member

MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_METADATA_BYTES = 64 * 1024 * 1024
"""All JSON members kept together (a save stream's configs and manifests are KiBs): the memory a
stream of many JSON-looking members can take."""
_METADATA = {"manifest.json", "index.json", "oci-layout", "repositories"}


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


def read_save_stream(
    stream: BinaryIO, scan_layer: Callable[[BinaryIO], LayerResult], label: str, wanted: str | None = None
) -> list[ScannedImage]:
    """Scan every layer of a ``docker save`` stream with ``scan_layer`` as it passes, and give the
    images the stream holds (only the image tagged ``wanted`` when given and present) with their
    layers' results."""
    results: dict[str, LayerResult] = {}
    small: dict[str, bytes] = {}
    links: dict[str, str] = {}
    try:
        tar = tarfile.open(fileobj=stream, mode="r|")  # noqa: SIM115 - the stream belongs to the caller
        kept = 0
        for member in each_member(tar):
            name = _norm(member.name)
            if member.issym() or member.islnk():
                target = member.linkname if member.islnk() else posixpath.join(posixpath.dirname(name), member.linkname)
                links[name] = _norm(target)
                continue
            if not member.isfile():
                continue
            f = tar.extractfile(member)
            if f is None:
                continue
            head = f.read(512)
            if name in _METADATA or (head.lstrip()[:1] in (b"{", b"[") and member.size <= MAX_JSON_BYTES):
                small[name] = head + f.read(MAX_JSON_BYTES)
                kept += len(small[name])
                if kept > MAX_METADATA_BYTES:
                    raise SourceError(
                        f"{label}: more than {MAX_METADATA_BYTES} bytes of JSON members: not a docker save stream"
                    )
            elif name.endswith("/layer.tar") or name.startswith("blobs/"):
                results[name] = scan_layer(prefixed(head, f))  # type: ignore[arg-type]
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise SourceError(
            f"{label}: the docker save stream is unreadable ({type(exc).__name__}: {str(exc)[:120]})"
        ) from None
    return list(_images(small, results, links, label, wanted))


def _images(
    small: dict[str, bytes], results: dict[str, LayerResult], links: dict[str, str], label: str, wanted: str | None
) -> Iterator[ScannedImage]:
    if "manifest.json" not in small:
        raise SourceError(f"{label}: the save stream has no manifest.json")
    entries = parse_save_manifest(small["manifest.json"], f"{label}: manifest.json")
    if wanted is not None:
        tagged = [e for e in entries if wanted in e.tags]
        entries = tagged or entries[:1]
    for i, entry in enumerate(entries):
        config_name = _norm(entry.config)
        if config_name not in small:
            raise SourceError(f"{label}: config {config_name} missing from the save stream")
        config = ImageConfig.parse(small[config_name], f"{label}: config")
        hexpart = posixpath.basename(config_name).removesuffix(".json")
        image = StreamedImage(
            entry.tags[0] if entry.tags else f"{label}@{i}", f"sha256:{hexpart}" if len(hexpart) == 64 else None
        )
        layers, layer_results = [], []
        for index, layer in enumerate(entry.layers):
            member = _norm(layer)
            for _ in range(8):
                member = links.get(member, member)
            result = results.get(member) or LayerResult(error=f"layer blob {member} missing from the save stream")
            digest = f"sha256:{member.split('/')[-1]}" if member.startswith("blobs/sha256/") else None
            diff_id = config.diff_ids[index] if index < len(config.diff_ids) else None
            layers.append(LayerFacts(index, diff_id, digest))
            layer_results.append(result)
        yield ScannedImage(image, config, layers, layer_results)


def _norm(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")

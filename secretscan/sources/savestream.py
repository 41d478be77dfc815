"""Read a ``docker save`` stream in one pass, without seeking and without temp files.

A save stream puts layers before the manifest that says which image uses them in which order, so
each layer is scanned as it passes (a layer's scan does not depend on its position) and attributed
once ``manifest.json`` arrives at the end. Small JSON members (configs, manifests) are kept in
memory; nothing is written to disk.
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from secretscan.errors import SourceError
from secretscan.image.compression import prefixed
from secretscan.image.model import ImageConfig, LayerHandle, parse_save_manifest
from secretscan.walk.layer import LayerResult
from secretscan.walk.tarstream import each_member

if TYPE_CHECKING:
    from secretscan.scan import RunState, Scanner

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


def _unavailable() -> Any:
    raise SourceError("a streamed layer cannot be reopened")


def scan_save_stream(
    stream: BinaryIO, scanner: Scanner, state: RunState, label: str, wanted: str | None = None
) -> None:
    """Scan every layer of a ``docker save`` stream and attribute them to the images it holds
    (only the image tagged ``wanted`` when given and present)."""
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
                results[name] = scanner.scan_layer_stream(prefixed(head, f))  # type: ignore[arg-type]
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise SourceError(
            f"{label}: the docker save stream is unreadable ({type(exc).__name__}: {str(exc)[:120]})"
        ) from None
    for image, config, handles, layer_results in _images(small, results, links, label, wanted):
        scanner.attribute(image, config, handles, layer_results, state)


def _images(
    small: dict[str, bytes], results: dict[str, LayerResult], links: dict[str, str], label: str, wanted: str | None
) -> Iterator[tuple[StreamedImage, ImageConfig, list[LayerHandle], list[LayerResult]]]:
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
        handles, layer_results = [], []
        for index, layer in enumerate(entry.layers):
            member = _norm(layer)
            for _ in range(8):
                member = links.get(member, member)
            result = results.get(member) or LayerResult(error=f"layer blob {member} missing from the save stream")
            digest = f"sha256:{member.split('/')[-1]}" if member.startswith("blobs/sha256/") else None
            diff_id = config.diff_ids[index] if index < len(config.diff_ids) else None
            handles.append(LayerHandle(index=index, diff_id=diff_id, blob_digest=digest, size=None, open=_unavailable))
            layer_results.append(result)
        yield image, config, handles, layer_results


def _norm(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")

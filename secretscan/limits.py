"""The bounds of a scan: what keeps a hostile image from exhausting memory or time. Below the
configuration that sets them (``config``) so that the layer walker, which obeys them, needs
nothing of the configuration's other concerns."""

from __future__ import annotations

from dataclasses import dataclass, fields

from secretscan.errors import ConfigError

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that keep a hostile image from exhausting memory or time. Whatever a limit stops is
    listed in the report. There is deliberately no per-file size cap: big files are scanned in
    windows."""

    chunk_bytes: int = 8 * MiB
    overlap_bytes: int = 64 * 1024
    max_nested_depth: int = 4
    max_nested_entries: int = 100_000
    """Per nested archive. SDK bundle jars hold tens of thousands of classes."""
    max_nested_bytes: int = 256 * MiB
    """A nested zip is read into memory (zip needs random access); larger ones are scanned as bytes.
    256 MiB admits the fat jars of Spring Boot images; nested jars inside them are far smaller."""
    max_nested_uncompressed_bytes: int = 1024 * MiB
    """Per nested archive member stream: the decompression-bomb bound."""
    max_git_objects: int = 1_000_000
    """Objects read from one git pack (``.git/objects/pack/*.pack``, a repository's history); the
    rest are listed as not read. Its own limit, as a repository of 20,000 commits holds some
    200,000 objects; the pack's index costs about 60 bytes an object."""
    max_git_bytes: int = 8 * 1024 * MiB
    """All that one git pack's objects inflate to and its deltas rebuild, together: the bomb bound
    for a pack (a delta copies up to 64 KiB of its base for 8 bytes). A history of 20,000 commits
    of source files rebuilds to about 1 GiB, read and searched in some 6 seconds."""
    max_layer_bytes: int = 32 * 1024 * MiB
    """Uncompressed bytes read from one layer; the rest is listed as not scanned."""
    max_compression_ratio: int = 500
    """Uncompressed / stored bytes of a layer, checked once it has produced 64 MiB: gzip bombs run
    at about 1000:1, real layers at 2-20:1 (a layer holding a large zero-filled file may need more)."""
    max_xz_memory: int = 256 * MiB
    """Decoder memory one xz stream (layer or nested file) may demand. Its header alone sets the
    dictionary size, so a few crafted bytes could ask liblzma for gigabytes; ``xz -9e`` output
    needs about 65 MiB. A stream over it is not decoded (listed as not scanned; its stored bytes
    are still scanned as plain bytes)."""
    max_package_db_bytes: int = 128 * MiB
    """A package database file (dpkg status, apk installed, pip RECORD, ...) is read whole to
    learn what the packages installed; a larger one is scanned but not read as a database."""
    max_held_blob_bytes: int = 512 * MiB
    """A registry's layers, as stored (compressed), held in memory per image (an anonymous memory
    file: never on disk) so that they are read like a local file: their package records in a pass
    before their scan, and several layers by worker processes at once. Past it, the rest stream
    once, one after another, as they arrive. The layers of a stream read once (``docker save``
    from the daemon, an archive piped in) held at once: when the next would pass it, the held
    ones are scanned and let go first; a layer larger than it is scanned as it passes. What is
    left of it beside those: room for an image's biggest compressed layer to be decompressed
    into memory and cut into pieces (``walk.split.inflate``)."""
    max_link_locations: int = 10_000
    """Locations one image gains through hard links (each link ships its target's secrets under
    another name): 1,000 links to a file of 1,000 tokens would be a million. Past it the rest of
    the links are listed as not followed."""

    def __post_init__(self) -> None:
        if self.overlap_bytes * 2 > self.chunk_bytes or self.overlap_bytes < 8192:
            raise ConfigError("limits: overlap_bytes must be at least 8192 and at most half of chunk_bytes")
        for f in fields(self):
            if getattr(self, f.name) <= 0:
                raise ConfigError(f"limits: {f.name} must be positive")

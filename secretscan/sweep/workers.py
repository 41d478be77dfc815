"""Scanning one registry layer wherever a worker runs: a forked process on this machine or a Dask
worker elsewhere. The job names the blob; the worker pulls it with its own credentials, scans it
and sends back the sealed result (fingerprints and redacted forms; never plaintext).

A Dask worker builds its own engine from a ``WorkerSpec`` and checks that it arrives at the
client's scan profile: a worker with another secretscan version or rule pack fails its jobs
loudly instead of filling the cache with results of a different scan.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from secretscan.codec import encode, pack
from secretscan.detect.artefacts import ArtefactStore
from secretscan.detect.engine import Engine
from secretscan.detect.rules import RuleSet
from secretscan.detect.seal import Sealer
from secretscan.detection import Detection
from secretscan.errors import SecretScanError
from secretscan.image import spool
from secretscan.image.model import LayerHandle
from secretscan.limits import Limits
from secretscan.models import RuleScope
from secretscan.sources.auth import Keychain, default_keychain
from secretscan.sources.reference import ImageRef
from secretscan.sources.registry import RegistryClient, RegistryOptions
from secretscan.version import __version__
from secretscan.walk import split
from secretscan.walk.layer import LAYER_RESULT_FORMAT, LayerResult, scan_layer_blob


@dataclass(frozen=True, slots=True)
class LayerJob:
    registry: str
    repository: str
    """A repository that holds the blob (any one: the blob is the same in all)."""
    digest: str
    diff_id: str | None
    size: int


IMAGE_CACHE_FORMAT = 2
"""Bump when what the sweep caches per image config (``run.ImageCacheEntry``) changes shape."""


def scan_profile(
    ruleset: RuleSet, sealer: Sealer, limits: Limits, database_bytes: int, package_scope: RuleScope
) -> str:
    """What a cached result depends on besides the layer's bytes (``database_bytes``: whether a
    layer's package records are read before its scan, so that the files they vouch for are
    searched with ``package_scope`` only)."""
    formats = [LAYER_RESULT_FORMAT, IMAGE_CACHE_FORMAT]
    parts = [__version__, formats, ruleset.digest, sealer.identity, encode(limits), database_bytes, package_scope.value]
    text = json.dumps(parts)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class LayerScanner:
    """Scans registry layers with one engine; used in this process and in forked workers."""

    engine: Engine
    sealer: Sealer
    limits: Limits
    keychain: Keychain
    options: RegistryOptions
    database_bytes: int = 0
    """The largest package database read before a layer's scan (0: records are not read first)."""
    held_bytes: int = 0
    """The largest blob held in memory for that (``image.spool``): this worker's share of
    ``max_held_blob_bytes``, so that the workers together stay within it."""
    package_scope: RuleScope = RuleScope.SELF_IDENTIFYING
    """The rules that search the files package records vouch for (``walk.layer.Vouching``)."""

    def scan(self, job: LayerJob, clients: dict[str, RegistryClient]) -> LayerResult:
        """The layer's sealed result; a download or read problem is the result's ``error``. With
        ``database_bytes``, a blob of up to ``held_bytes`` is held in memory and its package
        records read first, as a scan of the image reads them."""
        client = clients.get(job.repository)
        if client is None:
            client = clients[job.repository] = RegistryClient(
                ImageRef(job.registry, job.repository), self.keychain, self.options
            )
        size = job.size or None  # a descriptor size of 0 means "not given" here (no layer blob is empty)
        streamed = LayerHandle(0, job.diff_id, job.digest, size, lambda: client.open_blob(job.digest, size))
        try:
            worth = self.database_bytes and (size or 0) >= split.MIN_STORED_SURVEY  # else: searched whole, quickly
            with spool.held([streamed], self.held_bytes if worth else 0) as (layer,):
                expected = split.records_first(layer, self.limits, self.database_bytes) if layer.forkable else None
                with layer.open() as blob:
                    result = scan_layer_blob(
                        self.engine, self.sealer, self.limits, blob, expected=expected, package_scope=self.package_scope
                    )
        except SecretScanError as exc:
            result = LayerResult(error=str(exc))
        result.secrets = {}  # sweeps store and ship sealed results only
        return result


@dataclass(frozen=True)
class WorkerSpec:
    """What a remote worker needs to build the client's scan (rules by directory: the built-in
    pack plus any extra directories, which must exist on the workers too)."""

    rule_dirs: tuple[str, ...]
    limits: Limits
    fingerprint_key: bytes
    allow_values: tuple[str, ...]
    hyperscan: bool
    options: RegistryOptions
    ecr_hosts: tuple[str, ...]
    profile: str
    cache_dir: str | None = None
    """The client's --cache-dir, a path on the workers too; None: each worker's default cache."""
    database_bytes: int = 0
    """``LayerScanner.database_bytes``."""
    held_bytes: int = 0
    """``LayerScanner.held_bytes``."""
    package_scope: RuleScope = RuleScope.SELF_IDENTIFYING


def run_remote_job(spec: WorkerSpec, job: LayerJob) -> bytes:
    """The Dask task: returns the packed sealed result (``codec.pack``)."""
    scanner = _worker_scanner(spec)
    return pack(scanner.scan(job, _worker_clients(spec)))


@functools.cache
def _worker_scanner(spec: WorkerSpec) -> LayerScanner:
    """One engine per worker process and spec (compiling the rule pack takes a second)."""
    detection = Detection.build(
        [Path(d) for d in spec.rule_dirs],
        spec.fingerprint_key,
        [re.compile(p) for p in spec.allow_values],
        hyperscan=spec.hyperscan,
        store=ArtefactStore(Path(spec.cache_dir)) if spec.cache_dir else None,
    )
    ruleset, engine, sealer = detection.ruleset, detection.engine, detection.sealer
    profile = scan_profile(ruleset, sealer, spec.limits, spec.database_bytes, spec.package_scope)
    if profile != spec.profile:
        raise SecretScanError(
            f"this worker's scan profile differs from the client's (secretscan {__version__}, rules {ruleset.digest}): "
            "run the same secretscan version and rule directories on every worker"
        )
    keychain = default_keychain(ecr_hosts=spec.ecr_hosts)
    return LayerScanner(
        engine, sealer, spec.limits, keychain, spec.options, spec.database_bytes, spec.held_bytes, spec.package_scope
    )


@functools.cache
def _worker_clients(spec: WorkerSpec) -> dict[str, RegistryClient]:
    return {}

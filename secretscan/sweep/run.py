"""``secretscan sweep``: every image of a registry (or an ECR account), each unique layer scanned
once per scan profile, results in the sweep database.

Three phases. *Plan*: list repositories and tags, fetch each manifest (and, for images not in the
image cache, the config) on a few threads — this is all a re-run with nothing new does. *Scan*:
the layers that no cached image covers and the layer cache lacks, deduplicated by digest, biggest
first, on forked workers or a Dask cluster; each result is committed as it arrives, so a killed
sweep resumes where it stopped. *Attribute*: as soon as an image's last layer is in, its findings
are placed (index, build step, fate) with the same code as ``scan``, and the image is committed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from secretscan.codec import pack, unpack
from secretscan.errors import SecretScanError, SourceError, UsageError
from secretscan.findings import Occurrence, aggregate
from secretscan.image.manifest import DIGEST, MAX_CONFIG_BYTES, layer_descriptors, read_limit
from secretscan.image.model import ImageConfig, LayerFacts, parse_json
from secretscan.models import ImageSummary, Skipped
from secretscan.parallel import fork_map
from secretscan.scan import LayerNote, RunState, Scanner
from secretscan.sources.auth import Keychain
from secretscan.sources.reference import ImageRef
from secretscan.sources.registry import RegistryClient, RegistryOptions, UnreadablePlatform, resolve_manifest
from secretscan.stores.matcher import StoreMatcher
from secretscan.sweep.progress import SweepProgress
from secretscan.sweep.store import ImageResult, ImageRow, ImageStatus, Store, Unresolved
from secretscan.sweep.targets import SweepTarget, TagFilter, TaggedImage, parse_created
from secretscan.sweep.workers import LayerJob, LayerScanner, WorkerSpec, run_remote_job, scan_profile
from secretscan.walk.layer import LayerResult

logger = logging.getLogger(__name__)

MANIFEST_THREADS = 8


@dataclass(frozen=True, slots=True)
class ImageCacheEntry:
    """An image's attributed results, independent of its name: cached per config digest (and
    manifest annotations), which fix its layers' contents."""

    occurrences: tuple[Occurrence, ...]
    notes: tuple[LayerNote, ...]
    """What was skipped in its layers, to be named for each image that reuses the entry."""
    diff_ids: tuple[str, ...]
    summary: ImageSummary
    """Under the neutral name; each image that reuses the entry puts its own name and digest."""


@dataclass
class ImagePlan:
    registry: str
    repository: str
    tags: list[str]
    manifest_digest: str | Unresolved
    platform: str | None = None
    config_digest: str | None = None
    layers: list[LayerFacts] = field(default_factory=list)
    """Base first; every one with its blob digest (what the cache is keyed by)."""
    cache_key: str | None = None
    cached: ImageCacheEntry | None = None
    config: ImageConfig | None = None
    """Parsed config (in memory only) for images that must be attributed."""
    created: datetime | None = None
    error: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    from_index: bool = False

    @property
    def name(self) -> str:
        base = image_name(self.registry, self.repository, self.tags)
        return f"{base} [{self.platform}]" if self.from_index and self.platform else base


@dataclass
class SweepSummary:
    repositories: int = 0
    repositories_failed: int = 0
    images: int = 0
    images_scanned: int = 0
    images_cached: int = 0
    images_failed: int = 0
    layer_references: int = 0
    layers_unique: int = 0
    layers_scanned: int = 0
    layers_cached: int = 0
    """Unique layers whose results came from the database: from the layer cache, or with an image
    served whole from the image cache. Scanned + cached + failed = unique."""
    layers_failed: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    """What the sweep did not cover and why (a capped or endless listing): shown as not scanned."""

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def count(self, status: ImageStatus) -> None:
        if status is ImageStatus.SCANNED:
            self.images_scanned += 1
        elif status is ImageStatus.CACHED:
            self.images_cached += 1
        else:
            self.images_failed += 1


@dataclass(frozen=True)
class SweepOptions:
    tags: TagFilter = field(default_factory=TagFilter)
    platform: str | None = None
    """Only this platform of multi-platform indexes; None sweeps every platform."""
    dask: str | None = None
    """Dask scheduler address (``tcp://host:8786``): layers are scanned on its workers."""
    jobs: int = 1
    max_repositories: int = 100_000
    """At most this many repositories per sweep; a catalog with more is reported as cut short."""


class Sweeper:
    def __init__(
        self,
        scanner: Scanner,
        store: Store,
        keychain: Keychain,
        registry_options: RegistryOptions,
        options: SweepOptions,
        progress: SweepProgress | None = None,
        baseline: frozenset[str] = frozenset(),
        matchers: Sequence[StoreMatcher] = (),
    ) -> None:
        self.scanner, self.store, self.keychain = scanner, store, keychain
        self.registry_options, self.options = registry_options, options
        self.progress = progress or SweepProgress()
        self.baseline = baseline
        self.matchers = matchers
        """Managed-secret stores (``--vault``, ``--aws-secrets``) the sweep's findings are compared
        with, by fingerprint, once every image is recorded."""
        config = scanner.config
        self.profile = scan_profile(
            scanner.ruleset, scanner.sealer, config.limits, scanner.database_bytes, scanner.package_scope
        )
        self.summary = SweepSummary()

    # ---- phase 1: plan

    def run(self, target: SweepTarget) -> tuple[int, SweepSummary]:
        started = time.monotonic()
        sweep = self.store.start_sweep(target.text, self.profile, self.scanner.ruleset.digest)
        try:
            listing = target.repository_names(self.keychain, self.registry_options, self.options.max_repositories)
            names = list(listing.items)
            if listing.incomplete:
                self.summary.notes.append(listing.incomplete)
        except SecretScanError as exc:
            self._record_failure(sweep, target.registry, "*", [], f"cannot list repositories: {exc}")
            self.summary.repositories_failed = 1
            names = []
        self.summary.repositories = len(names)
        self.progress.phase("repositories", len(names))
        with ThreadPoolExecutor(MANIFEST_THREADS) as pool:
            per_repo = list(pool.map(lambda repo: self._plan_repository(target, repo), names))
        self.progress.done()
        plans = [p for repo_plans in per_repo for p in repo_plans]
        for plan in plans:
            if plan.error and isinstance(plan.manifest_digest, Unresolved):
                self._record_failure(sweep, plan.registry, plan.repository, plan.tags, plan.error, plan.manifest_digest)
        plans = [p for p in plans if not isinstance(p.manifest_digest, Unresolved)]
        self.summary.images = len(plans) + self.summary.images_failed
        self.summary.layer_references = sum(len(p.layers) for p in plans)
        unique = {layer.blob_digest for p in plans for layer in p.layers}
        to_attribute = [p for p in plans if p.cached is None and not p.error]
        self.summary.layers_unique = len(unique)
        # a cached image brings its layers' results with it: those layers count as from the cache
        # (the layer cache hits among the rest are added when the layers to scan are sorted out)
        self.summary.layers_cached = len(unique - {layer.blob_digest for p in to_attribute for layer in p.layers})
        for plan in plans:
            if plan.error:
                self._store_failed(sweep, plan)
            elif plan.cached is not None:
                self._finish(sweep, plan, plan.cached, ImageStatus.CACHED)
        self._scan_layers(sweep, to_attribute)
        for matcher in self.matchers:  # cached results hold fingerprints under this run's key: no plaintext needed
            self.store.put_verdicts(sweep, matcher.verdicts(self.store.sweep_fingerprints(sweep)))
        self.summary.seconds = round(time.monotonic() - started, 3)
        self.store.finish_sweep(sweep, self.summary.as_dict())
        return sweep, self.summary

    def _plan_repository(self, target: SweepTarget, repository: str) -> list[ImagePlan]:
        try:
            listing = target.tagged(repository, self.keychain, self.registry_options, self.options.tags)
        except SecretScanError as exc:
            self.summary.repositories_failed += 1
            return [ImagePlan(target.registry, repository, [], Unresolved(), error=f"cannot list tags: {exc}")]
        finally:
            self.progress.step()
        if listing.incomplete:
            self.summary.notes.append(listing.incomplete)
        client = RegistryClient(ImageRef(listing.registry, repository), self.keychain, self.registry_options)
        try:
            plans = self._resolve(client, listing)
        finally:
            client.session.close()
        return self._newest(plans)

    def _resolve(self, client: RegistryClient, listing: TaggedImage) -> list[ImagePlan]:
        """A plan per image the tags name (each platform of an index, as ``scan --all-platforms``
        resolves them); a platform that cannot be read is a failed plan, the others go on."""
        by_digest: dict[str, ImagePlan] = {}
        failed: list[ImagePlan] = []
        for tag in listing.tags:
            try:
                body, media_type, digest = client.manifest(tag)
                doc = parse_json(body, f"{listing.repository}:{tag}")
                items = resolve_manifest(client, doc, media_type, digest, self.options.platform, every=True)
            except SecretScanError as exc:
                failed.append(
                    ImagePlan(listing.registry, listing.repository, [tag], Unresolved(tag), error=str(exc))
                )
                continue
            for item in items:
                if isinstance(item, UnreadablePlatform):
                    failed.append(
                        ImagePlan(
                            listing.registry,
                            listing.repository,
                            [tag],
                            item.digest,
                            item.platform,
                            error=str(item.problem),
                            from_index=True,
                        )
                    )
                    continue
                plan = by_digest.get(item.digest)
                if plan is None:
                    plan = by_digest[item.digest] = ImagePlan(
                        listing.registry, listing.repository, [], item.digest, item.platform, from_index=item.from_index
                    )
                    self._describe(client, plan, item.manifest)
                plan.tags.append(tag)
                pushed = listing.pushed.get(tag)
                if pushed is not None and (plan.created is None or pushed > plan.created):
                    plan.created = pushed
        return failed + list(by_digest.values())

    def _describe(self, client: RegistryClient, plan: ImagePlan, manifest: dict[str, Any]) -> None:
        """Layers and config of one image manifest; the config is fetched only on a cache miss."""
        try:
            desc = manifest.get("config")
            if not isinstance(desc, dict) or not DIGEST.match(str(desc.get("digest", ""))):
                raise SecretScanError(f"{plan.name}: manifest has no valid config descriptor")
            plan.config_digest = str(desc["digest"])
            layers = layer_descriptors(manifest, plan.name)
            raw = manifest.get("annotations")
            plan.annotations = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
            annotations_digest = hashlib.sha256(json.dumps(plan.annotations, sort_keys=True).encode()).hexdigest()
            plan.cache_key = f"{plan.config_digest}|{annotations_digest}"
            cached = self.store.image_cache(self.profile, plan.cache_key)
            diff_ids: Sequence[str] = ()
            if cached is not None:
                plan.cached = unpack(ImageCacheEntry, cached[0])
                plan.created = plan.created or parse_created(cached[1])
                diff_ids = plan.cached.diff_ids
            else:
                limit = read_limit(desc, MAX_CONFIG_BYTES)
                config = ImageConfig.parse(client.blob(plan.config_digest, limit), f"{plan.name}: config")
                plan.config, plan.created = config, plan.created or parse_created(config.raw.get("created"))
                plan.platform = plan.platform or config.platform
                diff_ids = config.diff_ids
            plan.layers = [
                LayerFacts(i, diff_ids[i] if i < len(diff_ids) else None, str(layer["digest"]), _size(layer))
                for i, layer in enumerate(layers)
            ]
        except SecretScanError as exc:
            plan.error = str(exc)

    def _newest(self, plans: list[ImagePlan]) -> list[ImagePlan]:
        tags = self.options.tags
        good = [p for p in plans if not p.error]
        if tags.since is not None:
            good = [p for p in good if p.created is not None and p.created >= tags.since]
        if tags.newest is not None:
            good.sort(key=lambda p: p.created.timestamp() if p.created else float("-inf"), reverse=True)
            good = good[: tags.newest]
        return [p for p in plans if p.error] + good

    # ---- phase 2: scan unique layers

    def _scan_layers(self, sweep: int, plans: list[ImagePlan]) -> None:
        jobs: dict[str, LayerJob] = {}
        waiting: dict[str, list[ImagePlan]] = {}
        for plan in plans:
            for layer in plan.layers:
                digest = _blob_digest(layer)
                jobs.setdefault(digest, LayerJob(plan.registry, plan.repository, digest, layer.diff_id, layer.size or 0))
                waiting.setdefault(digest, []).append(plan)
        cached = self.store.cached_layers(self.profile, list(jobs))
        self.summary.layers_cached += len(cached)
        todo = sorted((j for d, j in jobs.items() if d not in cached), key=lambda j: -j.size)
        results: dict[str, LayerResult] = {}
        """Fresh results, kept only until the last image that uses them is attributed."""
        missing = {id(p): {d for layer in p.layers if (d := _blob_digest(layer)) not in cached} for p in plans}
        users = {d: len(ps) for d, ps in waiting.items()}

        def attribute(plan: ImagePlan) -> None:
            self._attribute(sweep, plan, results)
            for digest in map(_blob_digest, plan.layers):
                users[digest] -= 1
                if users[digest] == 0:
                    results.pop(digest, None)

        def arrived(job: LayerJob, result: LayerResult) -> None:
            verified = result.error is None and result.stored_digest == job.digest
            if verified:
                self.store.put_layer(self.profile, job.digest, job.diff_id, result)
                self.summary.layers_scanned += 1
            else:
                self.summary.layers_failed += 1
                if result.error is None:
                    result.error = f"content does not match its digest {job.digest} (got {result.stored_digest})"
            results[job.digest] = result
            self.progress.step()
            for plan in waiting.get(job.digest, ()):
                missing[id(plan)].discard(job.digest)
                if not missing[id(plan)]:
                    attribute(plan)

        for plan in plans:  # everything already cached: attribute now
            if not missing[id(plan)]:
                attribute(plan)
        self.progress.phase("layers", len(todo))
        try:
            if self.options.dask:
                self._dispatch_dask(todo, arrived)
            else:
                self._dispatch_local(todo, arrived)
        finally:
            self.progress.done()

    @property
    def _held_share(self) -> int:
        """The largest blob one job holds in memory: ``max_held_blob_bytes`` shared by the jobs
        that run at once (a worker's memory limit counts what it holds)."""
        return self.scanner.config.limits.max_held_blob_bytes // max(1, self.options.jobs)

    def _dispatch_local(self, todo: list[LayerJob], arrived: Callable[[LayerJob, LayerResult], None]) -> None:
        scanner = LayerScanner(
            self.scanner.engine,
            self.scanner.sealer,
            self.scanner.config.limits,
            self.keychain,
            self.registry_options,
            self.scanner.database_bytes,
            self._held_share,
            self.scanner.package_scope,
        )
        clients: dict[str, RegistryClient] = {}  # filled inside each worker process only
        fork_map(
            lambda i: scanner.scan(todo[i], clients),
            range(len(todo)),
            [j.size for j in todo],
            self.options.jobs,
            on_error=lambda i, reason: LayerResult(error=f"layer worker failed: {reason}"),
            on_done=lambda i, result: arrived(todo[i], result),
        )
        for client in clients.values():
            client.session.close()

    def _dispatch_dask(self, todo: list[LayerJob], arrived: Callable[[LayerJob, LayerResult], None]) -> None:
        try:
            from distributed import Client, as_completed
        except ImportError:
            raise UsageError("--dask needs the dask extra: pip install 'secretscan[dask]'") from None

        config = self.scanner.config
        spec = WorkerSpec(
            rule_dirs=tuple(str(d) for d in config.rule_dirs),
            limits=config.limits,
            fingerprint_key=config.fingerprint_key,
            allow_values=tuple(r.pattern for r in config.allowlist.regexes),
            hyperscan=config.hyperscan,
            options=self.registry_options,
            ecr_hosts=(),
            profile=self.profile,
            cache_dir=str(config.cache_dir) if config.cache_dir else None,
            database_bytes=self.scanner.database_bytes,
            held_bytes=self._held_share,
            package_scope=self.scanner.package_scope,
        )
        try:
            client = Client(self.options.dask, timeout=30)
        except (OSError, TimeoutError, ValueError) as exc:
            raise SourceError(
                f"cannot reach the Dask scheduler {self.options.dask} ({type(exc).__name__}: {exc})"
            ) from None
        try:
            futures = {
                client.submit(
                    run_remote_job, spec, job, key=f"secretscan-layer-{job.digest}-{self.profile[7:19]}", retries=1
                ): job
                for job in todo
            }
            for future in as_completed(futures):
                job = futures[future]
                try:
                    result = unpack(LayerResult, future.result())
                except Exception as exc:  # noqa: BLE001 - a worker's failure is this layer's error
                    result = LayerResult(error=f"dask worker failed: {type(exc).__name__}: {str(exc)[:200]}")
                arrived(job, result)
        finally:
            client.close()

    # ---- phase 3: attribute and record

    def _attribute(self, sweep: int, plan: ImagePlan, fresh: dict[str, LayerResult]) -> None:
        assert plan.config is not None
        results = []
        for digest in map(_blob_digest, plan.layers):
            result = fresh.get(digest) or self.store.layer(self.profile, digest)
            results.append(result or LayerResult(error=f"layer {digest} is missing from the cache"))
        state = RunState()
        identity = _Identity(plan.name, None, plan.annotations)
        notes = self.scanner.attribute(identity, plan.config, plan.layers, results, state)
        skipped = tuple(n for n in notes if n.reason is not None)
        errors = tuple(n for n in notes if n.reason is None)
        entry = ImageCacheEntry(tuple(state.occurrences), skipped, plan.config.diff_ids, state.summaries[0])
        if not errors and plan.cache_key:
            self.store.put_image_cache(
                self.profile,
                plan.cache_key,
                pack(entry),
                plan.config.raw.get("created") if isinstance(plan.config.raw.get("created"), str) else None,
            )
        self._finish(sweep, plan, entry, ImageStatus.SCANNED, errors)
        plan.config = None  # the raw config may hold secrets: drop it as soon as it is used

    def _finish(
        self,
        sweep: int,
        plan: ImagePlan,
        entry: ImageCacheEntry,
        status: ImageStatus,
        failures: tuple[LayerNote, ...] = (),
    ) -> None:
        name, digest = plan.name, plan.manifest_digest
        assert not isinstance(digest, Unresolved)  # only resolved images are scanned or cached
        occurrences = [
            Occurrence(o.sighting, replace(o.location, image=name, image_digest=digest))
            for o in entry.occurrences
        ]
        scanner = self.scanner
        result = aggregate(
            occurrences, scanner.ruleset, scanner.config, self.baseline, third_party=scanner.known.third_party
        )
        skipped = tuple(Skipped(n.label(name), n.reason or "") for n in entry.notes)
        errors = tuple(n.label(name) for n in failures)
        platform = plan.platform or entry.summary.platform
        summary = replace(entry.summary, name=name, digest=digest, platform=platform)
        image_result = ImageResult(summary, result.findings, result.known_test_keys, skipped, errors, result.suppressed)
        status = ImageStatus.FAILED if errors else status
        self.store.put_image(
            ImageRow(
                sweep,
                plan.registry,
                plan.repository,
                plan.manifest_digest,
                name,
                tuple(plan.tags),
                platform,
                plan.config_digest,
                status,
                "; ".join(errors) or None,
                image_result,
            ),
            [(_blob_digest(layer), layer.diff_id) for layer in plan.layers],
        )
        self.summary.count(status)

    def _store_failed(self, sweep: int, plan: ImagePlan) -> None:
        self._record_failure(
            sweep, plan.registry, plan.repository, plan.tags, plan.error or "failed", plan.manifest_digest
        )

    def _record_failure(
        self,
        sweep: int,
        registry: str,
        repository: str,
        tags: Iterable[str],
        error: str,
        digest: str | Unresolved = Unresolved(),  # noqa: B008 - frozen
    ) -> None:
        """An image (or a whole repository: ``Unresolved()``) that could not be read: listed
        with its error in the sweep, never dropped."""
        self.store.put_image(
            ImageRow(
                sweep,
                registry,
                repository,
                digest,
                image_name(registry, repository, list(tags)),
                tuple(tags),
                None,
                None,
                ImageStatus.FAILED,
                error,
                None,
            ),
            [],
        )
        if digest != Unresolved():  # a whole repository is not one image
            self.summary.images_failed += 1


@dataclass(frozen=True)
class _Identity:
    name: str
    digest: str | None
    annotations: dict[str, str]


def _blob_digest(layer: LayerFacts) -> str:
    """A registry layer's blob digest, which ``layer_descriptors`` has checked is there."""
    assert layer.blob_digest is not None
    return layer.blob_digest


def _size(descriptor: dict[str, Any]) -> int:
    size = descriptor.get("size")
    return size if isinstance(size, int) and size >= 0 else 0


def image_name(registry: str, repository: str, tags: Sequence[str]) -> str:
    return f"{registry}/{repository}:{tags[0]}" if tags else f"{registry}/{repository}"

"""The values a scan produces: locations, findings, what was skipped, and the report.

Plaintext secrets never reach these types; a ``Finding`` carries a redacted form and a keyed
fingerprint. The one exception is ``Finding.secret``, filled only when the user passed
``--show-secrets`` (the scanner leaves it ``None`` otherwise).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(enum.IntEnum):
    """Ordered so that ``--fail-on high`` means ``severity >= Severity.HIGH``."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of: {names})") from None

    def __str__(self) -> str:
        return self.name.lower()


class Exposure(str, enum.Enum):
    """How a secret ships with the image. Every class is pullable; they differ in who sees it."""

    FINAL = "final"
    """In the final filesystem: anyone who runs the image reads it."""
    REMOVED = "removed"
    """Deleted or overwritten by a later layer: gone from the running container, still in the
    earlier layer's blob that every pull downloads."""
    CONFIG = "config"
    """In the image config or build history (Env, Labels, ARG/RUN lines): `docker inspect` shows it."""

    def __str__(self) -> str:
        return self.value


class PackageState(str, enum.Enum):
    """What the package managers' own records say about the file a secret was seen in."""

    PRISTINE = "pristine"
    """Installed by a package, and its bytes match the digest the package manager recorded."""
    MEMBER = "member"
    """Installed by a package whose manager keeps no per-file digest (npm, Go modules, gems),
    in the layer that installed it and with nothing that says it was written later."""
    MODIFIED = "modified"
    """Recorded by a package manager with another digest: changed after install."""
    UNRECORDED = "unrecorded"
    """Inside a package's directory, but not installed by it (added later, or by someone else)."""

    def __str__(self) -> str:
        return self.value

    @property
    def published(self) -> bool:
        """Content that ships unchanged with a published package: the same in every image."""
        return self in (PackageState.PRISTINE, PackageState.MEMBER)


class Documentation(str, enum.Enum):
    """Source text that explains code rather than being it: where a name = value guess is an
    example more often than a credential."""

    DOCSTRING = "docstring"
    """A string literal that is a statement of its own (or ``__doc__ = …``, ``EXAMPLES = …``)."""
    COMMENT = "comment"
    """A comment in prose (a line of code commented out is not one: its value was once live)."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class HistoryStep:
    """The build step a ``history[N].created_by`` location is in, and the layer that step created:
    a responder goes from a leaking RUN line to the layer blob it produced (and the reverse)."""

    index: int
    """N: the entry's position in the config's ``history``."""
    layer_index: int | None
    """The layer the step created (0 = base); None when it created none (``empty_layer``: ENV,
    ARG, LABEL, ...) or when the history does not line up with the layers (squashed images)."""
    layer_digest: str | None
    """That layer's diff ID."""
    empty_layer: bool
    """The history marks the step as metadata only: it created no layer."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where one occurrence was seen."""

    image: str
    """The image as the user named it (or its tag inside a multi-image archive)."""
    image_digest: str | None
    """Manifest digest where one exists, else the config digest (the image ID)."""
    layer_index: int | None
    """0 = base layer; None for config and history locations and for plain directories."""
    layer_digest: str | None
    """The layer's diff ID (sha256 of the uncompressed tar): stable across compressions."""
    path: str
    """POSIX path inside the image, ``!/`` separating nested archives
    (``/app/lib/x.jar!/config/app.properties``), or a config field (``config.Env[2]``,
    ``history[5].created_by``)."""
    line: int | None = None
    created_by: str | None = None
    """The build step (history ``created_by``) that produced the layer or the config entry."""
    exposure: Exposure = Exposure.FINAL
    removed_in_layer: int | None = None
    """For ``Exposure.REMOVED``: the layer that deleted or overwrote the file."""
    removed_how: str | None = None
    """``deleted`` or ``overwritten``."""
    context: str | None = None
    """Key or field inside a structured file; never contains the secret."""
    package: str | None = None
    """The package the file belongs to, as its package manager recorded it (``flask 3.0.3 (pip)``)."""
    package_state: PackageState | None = None
    """Whether the file is that package's as installed; None where no package manager speaks of it."""
    documentation: Documentation | None = None
    """The value sits in a docstring or prose comment of source code (heuristic rules only: a
    provider's token format is a credential wherever it is written)."""
    history_step: HistoryStep | None = None
    """For a ``history[N].created_by`` location: that step, and the layer it created."""

    def describe(self) -> str:
        """One human line, e.g. ``layer 3: /app/x.jar!/a.properties:12``."""
        where = self.path + (f":{self.line}" if self.line else "")
        if self.layer_index is None:
            return where
        return f"layer {self.layer_index}: {where}"


class Verdict(str, enum.Enum):
    """Whether a found secret still works, as its provider answered (``--verify``)."""

    LIVE = "live"
    REVOKED = "revoked"
    """Determinately rejected by the provider."""
    UNKNOWN = "unknown"
    """No determinate answer: timeout, rate limit, unexpected status or body, unreachable."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Verification:
    verdict: Verdict
    provider: str
    evidence: str
    """What the provider said: HTTP status, account or token metadata. Never the secret."""


class ManagedStatus(str, enum.Enum):
    """A found secret compared with a managed-secret store (``--vault``, ``--aws-secrets``)."""

    CURRENT = "current"
    """Equal to the current version of a managed secret: a live managed secret leaked, rotate now."""
    FORMER = "former"
    """Equal to an older version only: already rotated, the leak exposes history."""
    UNMANAGED = "unmanaged"
    """Not in the part of the store that was searched: migrate it."""

    def __str__(self) -> str:
        return self.value


VaultStatus = ManagedStatus
"""Its name from when Vault was the only store (kept for imports)."""


class SecretStore(str, enum.Enum):
    """A managed-secret store findings are compared with."""

    VAULT = "vault"
    """HashiCorp Vault (or OpenBao) KV v2."""
    AWS_SECRETS = "aws-secrets"
    """AWS Secrets Manager."""

    def __str__(self) -> str:
        return self.value

    @property
    def label(self) -> str:
        return "Vault" if self is SecretStore.VAULT else "AWS Secrets Manager"


@dataclass(frozen=True, slots=True)
class ManagedMatch:
    """What one store says of a found secret. Names where it is held, never a value."""

    store: SecretStore
    status: ManagedStatus
    secret: str | None = None
    """The matching secret: ``mount/path`` in Vault, the secret's ARN in AWS Secrets Manager;
    None when unmanaged."""
    name: str | None = None
    """The secret's name, for people: ``mount/path`` in Vault, the name in AWS Secrets Manager."""
    field: str | None = None
    """The key inside it: a KV key in Vault, a field of a JSON secret string in AWS Secrets
    Manager (None: the whole string)."""
    version: str | None = None
    """The matching version: Vault's version number, AWS Secrets Manager's version id."""
    stage: str | None = None
    """AWS Secrets Manager: the matching version's staging label (``AWSCURRENT``, ``AWSPREVIOUS``,
    another label) or None for an older version that has none left. Vault: None."""
    current_version: str | None = None
    """The secret's current version, in the same terms as ``version``."""

    @property
    def ref(self) -> str | None:
        """``secret#field`` (Vault: ``kv/app/prod/db#password``)."""
        if self.secret is None:
            return None
        return f"{self.secret}#{self.field}" if self.field is not None else self.secret

    @property
    def label(self) -> str:
        """``name#field`` for people (the ARN is in ``secret``)."""
        name = self.name or self.secret or ""
        return f"{name}#{self.field}" if self.field is not None else name


@dataclass(frozen=True, slots=True)
class VaultMatch:
    """A Vault verdict in the shape it had before other stores (``Finding.vault``, and the JSON
    report's ``vault`` object)."""

    status: ManagedStatus
    path: str | None = None
    """``mount/path#key`` of the matching KV secret, e.g. ``kv/app/prod/db#password``."""
    version: int | None = None
    current_version: int | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """One distinct secret, with every place it was seen."""

    rule_id: str
    title: str
    severity: Severity
    confidence: str
    fingerprint: str
    """Keyed hash of the secret: the join key for baselines and allowlists; does not reveal it."""
    redacted: str
    locations: tuple[Location, ...]
    remediation: str
    secret: str | None = None
    """Full value: only with ``--show-secrets``."""
    verification: Verification | None = None
    managed: tuple[ManagedMatch, ...] = ()
    """What each managed-secret store that was asked says of it (``--vault``, ``--aws-secrets``),
    one verdict per store, in the order they were asked."""

    def verdict(self, store: SecretStore) -> ManagedMatch | None:
        """The verdict of ``store``, if it was asked."""
        return next((m for m in self.managed if m.store is store), None)

    @property
    def vault(self) -> VaultMatch | None:
        """The Vault verdict, if Vault was asked."""
        match = self.verdict(SecretStore.VAULT)
        if match is None:
            return None
        return VaultMatch(match.status, match.ref, _number(match.version), _number(match.current_version))

    @property
    def exposure(self) -> Exposure:
        """The widest exposure of its locations: final > config > removed."""
        kinds = {loc.exposure for loc in self.locations}
        for kind in (Exposure.FINAL, Exposure.CONFIG, Exposure.REMOVED):
            if kind in kinds:
                return kind
        return Exposure.FINAL


def _number(version: str | None) -> int | None:
    return int(version) if version is not None and version.isdigit() else None


@dataclass(frozen=True, slots=True)
class KnownTestKey:
    """A match on a credential published as an example or test fixture: reported, not failed on."""

    rule_id: str
    fingerprint: str
    redacted: str
    source: str
    locations: tuple[Location, ...]


@dataclass(frozen=True, slots=True)
class Skipped:
    """Something that was not (fully) scanned, and why. Every one appears in every report."""

    what: str
    reason: str


@dataclass(frozen=True, slots=True)
class LayerSummary:
    """One layer of an image, for timelines: what built it and how much of it was read."""

    index: int
    digest: str | None
    """The diff ID (sha256 of the uncompressed tar), as in ``Location.layer_digest``."""
    created_by: str | None
    """The build step, with every secret found in the image masked."""
    files: int
    bytes: int


class RuleScope(str, enum.Enum):
    """Which rules search a file (``detect.scope``)."""

    ALL = "all"
    """Every rule: an application's own files, config, history."""
    PROVIDER = "provider"
    """Every rule but the name = value heuristics (``generic.*``): package content with ``--search-packages``."""
    SELF_IDENTIFYING = "self-identifying"
    """The rules whose secret names its own kind, and the credential-file parsers (a file's name
    says what it holds): package content by default."""


@dataclass(frozen=True, slots=True)
class ImageSummary:
    name: str
    digest: str | None
    """Config digest (the image ID) for archives and layouts; manifest digest where one exists."""
    platform: str | None
    layers: int
    files_scanned: int
    bytes_scanned: int
    layer_details: tuple[LayerSummary, ...] = ()
    revision: str | None = None
    """The source revision from the image's ``org.opencontainers.image.revision`` label or annotation."""
    package_files: int = 0
    package_bytes: int = 0
    """Of ``files_scanned``: files the package managers' records list as installed (pip, dpkg, apk,
    npm, ...). All are scanned; the digests of those a secret was seen in are checked."""
    verified_files: int = 0
    verified_bytes: int = 0
    """Of those: files whose bytes were checked against their records before the search: searched
    with ``verified_rules`` only."""
    verified_rules: RuleScope = RuleScope.SELF_IDENTIFYING
    """The rules the verified files were searched with, to list what they publish: no value seen
    only in them can fail the scan (``--search-packages``: every provider-format rule)."""
    config_digest: str | None = None
    """The digest of the image config (the image ID), whichever ``digest`` names: with a manifest
    digest in ``digest``, a responder has both names by which registries and ``docker`` know it."""


@dataclass(frozen=True, slots=True)
class ScanReport:
    tool_version: str
    rules_digest: str
    target: str
    images: tuple[ImageSummary, ...]
    findings: tuple[Finding, ...]
    known_test_keys: tuple[KnownTestKey, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    suppressed: int = 0
    """Findings dropped by the baseline or allowlist (counted, so nothing disappears silently)."""
    errors: tuple[str, ...] = field(default_factory=tuple)
    """Fatal problems met after some results were already collected (kept, then exit 2)."""
    started: float | None = None
    finished: float | None = None
    """When the scan (or sweep) ran, in seconds since the epoch: formats such as GitLab's require it."""

    @property
    def complete(self) -> bool:
        return not self.skipped and not self.errors

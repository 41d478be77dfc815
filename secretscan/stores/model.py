"""What every managed-secret store provides, and the index that matching works on.

A store *reads* (``ManagedStore``): every value it holds under the user's selection goes into a
``ManagedIndex`` as a keyed fingerprint (``redact.fingerprint`` under the run's fingerprint key)
with where it is held, and the value is dropped at once. Findings carry fingerprints under the
same key, so a scan (which also has the plaintext) and a sweep (which has only the fingerprints
its database stores) are matched by the same lookup, and no store value is ever kept, logged or
written anywhere.

A store also *takes* values (``Destination``, ``Writer``): ``secretscan migrate`` plans names for
the unmanaged findings and writes them, never over a different current value unless forced.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from secretscan.errors import SourceError
from secretscan.models import ManagedMatch, ManagedStatus, SecretStore, Skipped
from secretscan.redact import fingerprint

MAX_SECRETS = 20_000
"""Secrets read per store and run: a bigger selection stops there (said in the report)."""
MAX_VERSIONS = 100
"""Versions read per secret, newest first."""


class StoreError(SourceError):
    """A store unreachable, credentials refused, a permission missing: one line, no secret."""


@dataclass(frozen=True, slots=True)
class Held:
    """One place a store holds a value: which secret, key and version."""

    secret: str
    """Vault: ``mount/path``; AWS Secrets Manager: the secret's ARN."""
    name: str
    """For people: Vault ``mount/path``; AWS Secrets Manager the secret's name."""
    field: str | None
    version: str
    current: bool
    current_version: str | None
    stage: str | None = None
    order: float = 0.0
    """Newer versions of one secret have higher values (Vault's version number, AWS's creation time)."""

    def match(self, store: SecretStore) -> ManagedMatch:
        return ManagedMatch(
            store,
            ManagedStatus.CURRENT if self.current else ManagedStatus.FORMER,
            self.secret,
            self.name,
            self.field,
            self.version,
            self.stage,
            self.current_version,
        )


@dataclass
class ManagedIndex:
    """Fingerprints of the values one store holds, each with where it is held."""

    store: SecretStore
    key: bytes = field(repr=False)
    """The run's fingerprint key: findings' fingerprints are made with it."""
    held: dict[str, list[Held]] = field(default_factory=dict, repr=False)
    secrets_read: int = 0
    truncated: bool = False
    """Stopped at ``MAX_SECRETS``."""
    skipped: list[Skipped] = field(default_factory=list)
    """Values that could not be compared (a binary secret), for the report."""
    unread: list[str] = field(default_factory=list)
    """Problems that left part of the selection unread (a permission missing on some secrets):
    a value held there would look unmanaged, so nothing is called unmanaged then."""

    def fingerprints(self, value: str) -> set[str]:
        """The fingerprints ``value`` is indexed under: as stored, and trimmed of whitespace."""
        return {fingerprint(candidate, self.key) for candidate in {value, value.strip()} if candidate}

    def add(self, value: str, held: Held) -> None:
        self.add_fingerprints(self.fingerprints(value), held)

    def add_fingerprints(self, fingerprints: set[str], held: Held) -> None:
        """For a reader that fingerprints values where it reads them (on worker threads)."""
        for fp in fingerprints:
            self.held.setdefault(fp, []).append(held)

    def lookup(self, fingerprints: set[str]) -> list[Held]:
        """Where the value with any of these fingerprints is held: current versions first."""
        found = {h for fp in fingerprints for h in self.held.get(fp, ())}
        return sorted(found, key=lambda h: (not h.current, h.secret, h.field or "", -h.order))

    def lookup_value(self, value: str) -> list[Held]:
        """As ``lookup``, for a plaintext in memory (a scan): trimmed of whitespace too."""
        return self.lookup(self.fingerprints(value))

    @property
    def complete(self) -> bool:
        return not self.truncated and not self.unread


class ManagedStore(Protocol):
    """A store findings are compared with (``--vault``, ``--aws-secrets``)."""

    kind: SecretStore

    def read(self, index: ManagedIndex) -> None:
        """Put every value of the user's selection into ``index``. Raises ``StoreError`` when
        nothing can be said (unreachable, refused, no permission to list); trouble with some
        secrets only goes to ``index.unread`` or ``index.skipped``."""
        ...


class WriteAction(enum.StrEnum):
    CREATED = "created"
    OVERWRITTEN = "overwritten"
    """A different value was current, and ``--force`` was given."""
    UNCHANGED = "unchanged"
    """The value is already the current one: nothing written (a re-run)."""
    CONFLICT = "conflict"
    """A different value is current: left as is."""
    DENIED = "denied"


@dataclass(frozen=True)
class Written:
    action: WriteAction
    version: str | int | None = None
    problem: str | None = None
    """One line for the user when the action is not what was asked (conflict, denied)."""
    details: Mapping[str, str] = field(default_factory=dict)
    """Store-specific facts for the record (the ARN of an AWS secret)."""


class Writer(Protocol):
    def write(self, place: str, value: str, fingerprint: str, *, force: bool) -> Written:
        """Store ``value`` at ``place`` unless it is already current there; a different current
        value only with ``force``. Raises ``StoreError`` when the store cannot be used at all."""
        ...


class Destination(Protocol):
    """Where ``secretscan migrate`` puts unmanaged secrets, and what it tells people about it."""

    kind: SecretStore

    @property
    def root(self) -> str:
        """Where new secrets go, as ``--to`` names it: ``secret/secretscan``, ``secretscan/``."""
        ...

    def describe(self) -> str:
        """``Vault KV v2 under `secret/secretscan```, for the plan's heading."""
        ...

    def place(self, repository: str, name: str) -> str:
        """Where a secret found in ``repository`` and named ``name`` goes (a KV path, a secret name)."""
        ...

    def ref(self, place: str) -> str:
        """How reports name ``place`` (``mount/path#value``, the secret's name)."""
        ...

    def store_command(self, place: str) -> str:
        """A command that stores the value at ``place``, reading it from standard input."""
        ...

    def runtime(self, place: str, variable: str) -> str:
        """How a workload reads it at run time instead of from the image."""
        ...

    def plan_fields(self, place: str) -> dict[str, Any]:
        """Store-specific keys of a JSON plan item."""
        ...

    def writer(self) -> Writer:
        """Connected, for ``migrate apply``: raises ``StoreError`` when the store cannot be reached."""
        ...

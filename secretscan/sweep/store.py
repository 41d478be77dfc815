"""The sweep database: one SQLite file holding the per-layer cache, the per-image cache and every
sweep's results, so that re-runs are incremental and incident responders can ask "where does
this layer or this secret ship?" without rescanning.

Nothing in it is a secret: layer and image results are stored as sightings (fingerprints and
redacted forms, ``detect.seal``), encoded by ``codec``. Each finished layer and image is committed
on its own, so a sweep that is killed keeps everything it had finished.

With ``--vault`` or ``--aws-secrets``, a sweep also records each store's verdict on each of its
secrets (``managed_verdicts``: which secret, key and version holds it, never a value) and what
kept the store from saying more (``managed_checks``).

Cache rows are keyed by a *profile*: the digest of everything that changes what a scan of the
same bytes produces (tool version, rule pack, test-key list, fingerprint key, allowlist value
regexes, limits). A new rule pack misses the cache for every layer, and nothing else does.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from secretscan.codec import pack, unpack
from secretscan.errors import ConfigError
from secretscan.models import Finding, ImageSummary, KnownTestKey, ManagedMatch, SecretStore, Skipped
from secretscan.stores.matcher import Verdicts
from secretscan.walk.layer import LayerResult

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS layer_cache (
    profile TEXT NOT NULL, digest TEXT NOT NULL, diff_id TEXT, result BLOB NOT NULL,
    files INTEGER NOT NULL, bytes INTEGER NOT NULL, scanned_at REAL NOT NULL,
    PRIMARY KEY (profile, digest));
CREATE TABLE IF NOT EXISTS image_cache (
    profile TEXT NOT NULL, key TEXT NOT NULL, result BLOB NOT NULL, created TEXT,
    PRIMARY KEY (profile, key));
CREATE TABLE IF NOT EXISTS sweeps (
    id INTEGER PRIMARY KEY AUTOINCREMENT, target TEXT NOT NULL, profile TEXT NOT NULL, rules_digest TEXT NOT NULL,
    started REAL NOT NULL, finished REAL, status TEXT NOT NULL, summary TEXT);
CREATE TABLE IF NOT EXISTS images (
    sweep INTEGER NOT NULL REFERENCES sweeps(id), registry TEXT NOT NULL, repository TEXT NOT NULL,
    manifest_digest TEXT NOT NULL, name TEXT NOT NULL, tags TEXT NOT NULL, platform TEXT, config_digest TEXT,
    status TEXT NOT NULL, error TEXT, result BLOB, scanned_at REAL NOT NULL,
    PRIMARY KEY (sweep, registry, repository, manifest_digest));
CREATE TABLE IF NOT EXISTS image_layers (
    manifest_digest TEXT NOT NULL, position INTEGER NOT NULL, digest TEXT NOT NULL, diff_id TEXT,
    PRIMARY KEY (manifest_digest, position));
CREATE INDEX IF NOT EXISTS image_layers_digest ON image_layers (digest);
CREATE INDEX IF NOT EXISTS image_layers_diff_id ON image_layers (diff_id);
CREATE TABLE IF NOT EXISTS image_secrets (
    sweep INTEGER NOT NULL, registry TEXT NOT NULL, repository TEXT NOT NULL, manifest_digest TEXT NOT NULL,
    fingerprint TEXT NOT NULL, rule_id TEXT NOT NULL, severity TEXT NOT NULL, redacted TEXT NOT NULL,
    layer_digest TEXT, path TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS image_secrets_fp ON image_secrets (fingerprint);
CREATE INDEX IF NOT EXISTS image_secrets_layer ON image_secrets (layer_digest);
CREATE TABLE IF NOT EXISTS managed_verdicts (
    sweep INTEGER NOT NULL, store TEXT NOT NULL, fingerprint TEXT NOT NULL, verdict BLOB NOT NULL,
    PRIMARY KEY (sweep, store, fingerprint));
CREATE TABLE IF NOT EXISTS managed_checks (
    sweep INTEGER NOT NULL, store TEXT NOT NULL, checked_at REAL NOT NULL, errors TEXT NOT NULL, skipped BLOB NOT NULL,
    PRIMARY KEY (sweep, store));
"""


@dataclass(frozen=True, slots=True)
class ImageResult:
    """What one image of a sweep produced: stored per image, merged into the sweep's report."""

    summary: ImageSummary
    findings: tuple[Finding, ...] = ()
    known_test_keys: tuple[KnownTestKey, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    errors: tuple[str, ...] = ()
    suppressed: int = 0


class ImageStatus(StrEnum):
    SCANNED = "scanned"
    """At least one of its layers or its config was scanned by this sweep."""
    CACHED = "cached"
    FAILED = "failed"


class SweepStatus(StrEnum):
    RUNNING = "running"
    """Running, or killed while it ran: what it did not reach must not look clean."""
    FINISHED = "finished"


@dataclass(frozen=True, slots=True)
class Unresolved:
    """Where a manifest digest would be, for what the sweep could not resolve to one: a repository
    whose tags could not be listed (``tag`` None), or a tag whose manifest could not be read."""

    tag: str | None = None

    @property
    def key(self) -> str:
        """Its key in the database, where the digest would be (``unresolved:TAG``, ``unresolved:*``)."""
        return f"{_UNRESOLVED}{self.tag if self.tag is not None else '*'}"


_UNRESOLVED = "unresolved:"


def _manifest_key(digest: str | Unresolved) -> str:
    return digest.key if isinstance(digest, Unresolved) else digest


def _manifest_digest(key: str) -> str | Unresolved:
    if not key.startswith(_UNRESOLVED):
        return key
    tag = key[len(_UNRESOLVED) :]
    return Unresolved(None if tag == "*" else tag)


@dataclass(frozen=True, slots=True)
class ImageRow:
    sweep: int
    registry: str
    repository: str
    manifest_digest: str | Unresolved
    name: str
    """As reports show it: ``registry/repository:first-tag``, `` [os/arch]`` for an index's images."""
    tags: tuple[str, ...]
    platform: str | None
    config_digest: str | None
    status: ImageStatus
    error: str | None
    result: ImageResult | None


@dataclass(frozen=True, slots=True)
class SweepRow:
    id: int
    target: str
    profile: str
    rules_digest: str
    started: float
    finished: float | None
    status: SweepStatus
    summary: dict[str, Any]


def _private_files(path: Path) -> None:
    """Make the database file mode 0600 before SQLite opens it, and its ``-wal`` and ``-shm`` files
    with it: SQLite creates those with the database file's mode (fchmod, whatever the umask), so
    they are private from the moment they exist. Ones left by an older version or a killed run
    are made private here too (SQLite only sets the mode of an empty one). A symlink or anything
    but a regular file at any of the three names is refused: the files are written, and a write
    never follows a link."""
    base = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for name, flags in ((path, base | os.O_CREAT), (Path(f"{path}-wal"), base), (Path(f"{path}-shm"), base)):
        try:
            fd = os.open(name, flags, 0o600)
        except FileNotFoundError:
            continue
        except OSError as exc:
            if os.path.islink(name):
                raise ConfigError(
                    f"{name}: is a symbolic link; not followed (give --db the file it points to)"
                ) from None
            raise ConfigError(f"{name}: cannot open the sweep database ({exc.strerror})") from None
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise ConfigError(f"{name}: not a regular file, so not a sweep database")
            if mode & 0o077:
                os.fchmod(fd, 0o600)
        except PermissionError:
            pass  # someone else's database, opened read-only: its owner decides its mode
        finally:
            os.close(fd)


def default_db_path() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "secretscan" / "sweeps.db"


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _private_files(path)
        try:
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{path}: not a usable secretscan database ({exc})") from None
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif row[0] != str(SCHEMA_VERSION):
            raise ConfigError(f"{path}: database schema {row[0]}, this secretscan reads {SCHEMA_VERSION}")
        self.path = path
        self._lock = threading.RLock()  # manifests are planned on threads; one connection, used in turn

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self.db.execute(sql, params).fetchall()

    def close(self) -> None:
        self.db.close()

    # ---- caches

    def cached_layers(self, profile: str, digests: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(digests), 500):
            part = list(digests[i : i + 500])
            marks = ",".join("?" * len(part))
            found.update(
                r[0]
                for r in self._rows(
                    f"SELECT digest FROM layer_cache WHERE profile=? AND digest IN ({marks})",  # noqa: S608
                    (profile, *part),
                )
            )
        return found

    def layer(self, profile: str, digest: str) -> LayerResult | None:
        rows = self._rows("SELECT result FROM layer_cache WHERE profile=? AND digest=?", (profile, digest))
        return unpack(LayerResult, rows[0][0]) if rows else None

    def put_layer(self, profile: str, digest: str, diff_id: str | None, result: LayerResult) -> None:
        self._rows(
            "INSERT OR REPLACE INTO layer_cache VALUES (?,?,?,?,?,?,?)",
            (profile, digest, diff_id, pack(result), result.files, result.bytes, time.time()),
        )

    def image_cache(self, profile: str, key: str) -> tuple[bytes, str | None] | None:
        rows = self._rows("SELECT result, created FROM image_cache WHERE profile=? AND key=?", (profile, key))
        return (rows[0][0], rows[0][1]) if rows else None

    def put_image_cache(self, profile: str, key: str, blob: bytes, created: str | None) -> None:
        self._rows("INSERT OR REPLACE INTO image_cache VALUES (?,?,?,?)", (profile, key, blob, created))

    # ---- sweeps and their images

    def start_sweep(self, target: str, profile: str, rules_digest: str) -> int:
        with self._lock:
            cur = self.db.execute(
                "INSERT INTO sweeps (target, profile, rules_digest, started, status) VALUES (?,?,?,?,?)",
                (target, profile, rules_digest, time.time(), SweepStatus.RUNNING.value),
            )
            return int(cur.lastrowid or 0)

    def finish_sweep(self, sweep: int, summary: dict[str, Any]) -> None:
        self._rows(
            "UPDATE sweeps SET finished=?, status=?, summary=? WHERE id=?",
            (time.time(), SweepStatus.FINISHED.value, json.dumps(summary), sweep),
        )

    def put_image(self, row: ImageRow, layers: Sequence[tuple[str, str | None]]) -> None:
        with self._transaction():
            self._rows(
                "INSERT OR REPLACE INTO images VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    row.sweep,
                    row.registry,
                    row.repository,
                    _manifest_key(row.manifest_digest),
                    row.name,
                    json.dumps(list(row.tags)),
                    row.platform,
                    row.config_digest,
                    row.status.value,
                    row.error,
                    pack(row.result) if row.result is not None else None,
                    time.time(),
                ),
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO image_layers VALUES (?,?,?,?)",
                [(_manifest_key(row.manifest_digest), i, digest, diff_id) for i, (digest, diff_id) in enumerate(layers)],
            )
            key = (row.sweep, row.registry, row.repository, _manifest_key(row.manifest_digest))
            self._rows(
                "DELETE FROM image_secrets WHERE sweep=? AND registry=? AND repository=? AND manifest_digest=?", key
            )
            if row.result is not None:
                self.db.executemany(
                    "INSERT INTO image_secrets VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [
                        (*key, f.fingerprint, f.rule_id, str(f.severity), f.redacted, loc.layer_digest, loc.path)
                        for f in row.result.findings
                        for loc in f.locations
                    ],
                )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def sweeps(self) -> list[SweepRow]:
        return [
            SweepRow(r[0], r[1], r[2], r[3], r[4], r[5], SweepStatus(r[6]), json.loads(r[7]) if r[7] else {})
            for r in self._rows(
                "SELECT id, target, profile, rules_digest, started, finished, status, summary FROM sweeps ORDER BY id"
            )
        ]

    def images(self, sweep: int) -> Iterator[ImageRow]:
        for r in self._rows(
            "SELECT sweep, registry, repository, manifest_digest, name, tags, platform, config_digest, status, error, "
            "result "
            "FROM images WHERE sweep=? ORDER BY registry, repository, manifest_digest",
            (sweep,),
        ):
            sweep_id, registry, repository, digest, name, tags, platform, config_digest, status, error, result = r
            yield ImageRow(
                sweep_id,
                registry,
                repository,
                _manifest_digest(digest),
                name,
                tuple(json.loads(tags)),
                platform,
                config_digest,
                ImageStatus(status),
                error,
                unpack(ImageResult, result) if result is not None else None,
            )

    def sweep_fingerprints(self, sweep: int) -> list[str]:
        """Every secret the sweep's images ship, by fingerprint."""
        return [r[0] for r in self._rows("SELECT DISTINCT fingerprint FROM image_secrets WHERE sweep=?", (sweep,))]

    def put_verdicts(self, sweep: int, verdicts: Verdicts) -> None:
        """A store's verdicts on the sweep's secrets, replacing an earlier check of the same store."""
        store = verdicts.store.value
        with self._transaction():
            self._rows("DELETE FROM managed_verdicts WHERE sweep=? AND store=?", (sweep, store))
            self.db.executemany(
                "INSERT INTO managed_verdicts VALUES (?,?,?,?)",
                [(sweep, store, fp, pack(match)) for fp, match in verdicts.matches.items()],
            )
            self._rows(
                "INSERT OR REPLACE INTO managed_checks VALUES (?,?,?,?,?)",
                (sweep, store, time.time(), json.dumps(list(verdicts.errors)), pack(list(verdicts.skipped))),
            )

    def verdicts(self, sweep: int) -> list[Verdicts]:
        """What each store asked in the sweep said, Vault first."""
        found = []
        for store in SecretStore:
            check = self._rows(
                "SELECT errors, skipped FROM managed_checks WHERE sweep=? AND store=?", (sweep, store.value)
            )
            if not check:
                continue
            rows = self._rows(
                "SELECT fingerprint, verdict FROM managed_verdicts WHERE sweep=? AND store=?", (sweep, store.value)
            )
            found.append(
                Verdicts(
                    store,
                    {fp: unpack(ManagedMatch, blob) for fp, blob in rows},
                    tuple(json.loads(check[0][0])),
                    tuple(unpack(list[Skipped], check[0][1])),  # type: ignore[arg-type]
                )
            )
        return found

    def prune(self, keep: int) -> int:
        """Keep the newest ``keep`` sweeps with their images, and the cache entries of the scan
        profiles they used; return how many sweeps were removed."""
        with self._transaction():
            old = [r[0] for r in self.db.execute("SELECT id FROM sweeps ORDER BY id DESC LIMIT -1 OFFSET ?", (keep,))]
            for table in ("image_secrets", "images", "managed_verdicts", "managed_checks"):
                self.db.executemany(f"DELETE FROM {table} WHERE sweep=?", [(i,) for i in old])  # noqa: S608
            self.db.executemany("DELETE FROM sweeps WHERE id=?", [(i,) for i in old])
            self.db.execute(
                "DELETE FROM image_layers WHERE manifest_digest NOT IN (SELECT manifest_digest FROM images)"
            )
            for table in ("layer_cache", "image_cache"):
                self.db.execute(f"DELETE FROM {table} WHERE profile NOT IN (SELECT profile FROM sweeps)")  # noqa: S608
        return len(old)

    # ---- reverse index (``secretscan where``)

    def where_secret(self, fingerprint: str) -> list[tuple[int, str, str, str, str, str, str | None, str]]:
        """(sweep, registry, repository, manifest digest, tags json, rule, layer digest, path) of
        every image that shipped the secret, newest sweep first."""
        return list(
            self._rows(
                "SELECT s.sweep, s.registry, s.repository, s.manifest_digest, i.tags, s.rule_id, s.layer_digest, s.path "
                "FROM image_secrets s JOIN images i USING (sweep, registry, repository, manifest_digest) "
                "WHERE s.fingerprint=? ORDER BY s.sweep DESC, s.registry, s.repository, s.path",
                (fingerprint,),
            )
        )

    def where_layer(self, digest: str) -> list[tuple[int, str, str, str, str, int]]:
        """(sweep, registry, repository, manifest digest, tags json, position) of every image that
        has the layer (as a blob digest or a diff ID), newest sweep first."""
        return list(
            self._rows(
                "SELECT DISTINCT i.sweep, i.registry, i.repository, i.manifest_digest, i.tags, l.position "
                "FROM image_layers l JOIN images i ON i.manifest_digest = l.manifest_digest "
                "WHERE l.digest=? OR l.diff_id=? ORDER BY i.sweep DESC, i.registry, i.repository",
                (digest, digest),
            )
        )

    def layer_secrets(self, digest: str) -> list[tuple[str, str, str, str]]:
        """(fingerprint, rule, severity, redacted) of what a layer was found to hold."""
        return list(
            self._rows(
                "SELECT DISTINCT s.fingerprint, s.rule_id, s.severity, s.redacted FROM image_secrets s "
                "WHERE s.layer_digest=? OR s.layer_digest IN "
                "(SELECT diff_id FROM image_layers WHERE digest=?) ORDER BY s.rule_id",
                (digest, digest),
            )
        )

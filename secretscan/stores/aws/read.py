"""AWS Secrets Manager as a store to match against (``--aws-secrets [PREFIX]``).

Secrets are listed (``ListSecrets``, paginated, by name prefix and tags), then every version still
held (``ListSecretVersionIds`` with deprecated versions) is read (``GetSecretValue``): the version
staged ``AWSCURRENT`` — or ``AWSPENDING``, a rotation under way, which is about to be — is
*current*; ``AWSPREVIOUS`` and older versions are *former*. A JSON object secret string is compared
field by field, as Vault KV keys are, and whole. Binary secrets are not compared, and said so.
Read-only permissions suffice: ``ListSecrets``, ``ListSecretVersionIds``, ``GetSecretValue``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from secretscan.models import SecretStore, Skipped
from secretscan.stores.aws.connect import (
    DENIED,
    AwsSecretsSettings,
    ClientFactory,
    error_code,
    failure,
    secrets_manager,
)
from secretscan.stores.model import MAX_SECRETS, MAX_VERSIONS, Held, ManagedIndex

PAGE = 100
"""ListSecrets and ListSecretVersionIds page size (the most AWS gives)."""
WORKERS = 8
"""Secrets read at once: a request is mostly waiting; botocore retries what AWS throttles."""
MAX_FIELDS = 1_000
"""Fields compared per JSON secret string (AWS caps a string at 64 KiB)."""
CURRENT_STAGES = ("AWSCURRENT", "AWSPENDING")
_GONE = frozenset({"ResourceNotFoundException", "InvalidRequestException"})
"""Deleted, or scheduled for deletion, between the listing and the read: nothing to compare."""


@dataclass(frozen=True)
class _Trouble:
    """An AWS answer about one secret, which does not stop the others."""

    action: str
    exc: Exception

    @property
    def code(self) -> str:
        return error_code(self.exc)


@dataclass
class _Read:
    """What reading one secret gave: fingerprints with where they are held (no value), or trouble."""

    held: list[tuple[set[str], Held]] = field(default_factory=list)
    binary: int = 0
    """Versions that hold a SecretBinary."""
    trouble: _Trouble | None = None


class AwsSecretsStore:
    """``--aws-secrets``: the secrets of ``settings``' selection, read with a client from ``connect``."""

    kind = SecretStore.AWS_SECRETS

    def __init__(self, settings: AwsSecretsSettings, connect: ClientFactory = secrets_manager) -> None:
        self.settings = settings
        self._connect = connect

    def read(self, index: ManagedIndex) -> None:
        """A page of secrets at a time, its secrets read on ``WORKERS`` threads (one client: boto3
        clients may be shared between threads); each worker turns values into fingerprints
        itself, so no value leaves it."""
        client = self._connect()
        denied: dict[str, list[str]] = {}
        with ThreadPoolExecutor(WORKERS) as pool:
            for page in _pages(client, self.settings, index):
                room = MAX_SECRETS - index.secrets_read
                if len(page) > room:
                    page, index.truncated = page[:room], True
                named = [(str(e["ARN"]), str(e.get("Name") or e["ARN"])) for e in page]
                reads = pool.map(lambda secret: _read_secret(client, secret[0], secret[1], index), named)
                for (arn, name), read in zip(named, reads, strict=True):
                    index.secrets_read += 1
                    self._take(index, client, arn, name, read, denied)
                if index.truncated:
                    break
        for action, names in denied.items():
            index.unread.append(
                f"AWS Secrets Manager: access denied for secretsmanager:{action} on {len(names)} secret(s) "
                f"(first: {names[0]}): their values were not compared, so no finding is called unmanaged"
            )

    @staticmethod
    def _take(index: ManagedIndex, client: Any, arn: str, name: str, read: _Read, denied: dict[str, list[str]]) -> None:
        for fingerprints, held in read.held:
            index.add_fingerprints(fingerprints, held)
        if read.binary:
            index.skipped.append(
                Skipped(
                    f"AWS Secrets Manager secret {name} ({arn})",
                    f"binary (SecretBinary) in {read.binary} version(s): not compared",
                )
            )
        trouble = read.trouble
        if trouble is None or trouble.code in _GONE:
            return
        if trouble.code in DENIED:
            denied.setdefault(trouble.action, []).append(name)
        elif trouble.code == "DecryptionFailure":
            index.skipped.append(
                Skipped(f"AWS Secrets Manager secret {name}", "not compared: its KMS key could not decrypt it")
            )
        else:
            raise failure(trouble.exc, trouble.action, client, name) from None


def _pages(client: Any, settings: AwsSecretsSettings, index: ManagedIndex) -> Iterator[list[dict[str, Any]]]:
    """The secrets of the selection, a page at a time. ListSecrets filters by name prefix and tag
    key on the server; the prefix and the exact tag pairs are checked here too. A listing longer
    than the bound on pages is cut there (``index.truncated``)."""
    import botocore.exceptions

    filters = [{"Key": "name", "Values": [settings.prefix]}] if settings.prefix else []
    filters += [{"Key": "tag-key", "Values": [tag.key]} for tag in settings.tags]
    token: str | None = None
    for _ in range(MAX_SECRETS // PAGE + 2):
        request: dict[str, Any] = {"MaxResults": PAGE}
        if filters:
            request["Filters"] = filters
        if token:
            request["NextToken"] = token
        try:
            page = client.list_secrets(**request)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise failure(exc, "ListSecrets", client) from None
        yield [entry for entry in page.get("SecretList") or () if _selected(entry, settings)]
        token = page.get("NextToken") or None
        if not token:
            return
    index.truncated = True


def _selected(entry: dict[str, Any], settings: AwsSecretsSettings) -> bool:
    tags = {str(t.get("Key")): str(t.get("Value")) for t in entry.get("Tags") or ()}
    return (
        bool(entry.get("ARN"))
        and str(entry.get("Name") or "").startswith(settings.prefix)
        and all(tag.matches(tags) for tag in settings.tags)
    )


def _versions(client: Any, arn: str) -> list[tuple[str, list[str], float]]:
    """(version id, staging labels, created) of every version still held, current first, then
    newest first."""
    found: list[tuple[str, list[str], float]] = []
    token: str | None = None
    for _ in range(MAX_VERSIONS // PAGE + 2):
        request: dict[str, Any] = {"SecretId": arn, "IncludeDeprecated": True, "MaxResults": PAGE}
        if token:
            request["NextToken"] = token
        page = client.list_secret_version_ids(**request)
        for version in page.get("Versions") or ():
            created = version.get("CreatedDate")
            stamp = created.timestamp() if isinstance(created, datetime) else 0.0
            found.append((str(version["VersionId"]), [str(s) for s in version.get("VersionStages") or ()], stamp))
        token = page.get("NextToken") or None
        if not token:
            break
    found.sort(key=lambda v: (not _current(v[1]), -v[2]))
    return found[:MAX_VERSIONS]


def _read_secret(client: Any, arn: str, name: str, index: ManagedIndex) -> _Read:
    """Every version of one secret, as fingerprints (on a worker thread: nothing here touches the
    index but its key)."""
    import botocore.exceptions

    read = _Read()
    action = "ListSecretVersionIds"
    try:
        versions = _versions(client, arn)
        current = next((v for v, stages, _ in versions if "AWSCURRENT" in stages), None)
        action = "GetSecretValue"
        for version, stages, created in versions:
            try:
                answer = client.get_secret_value(SecretId=arn, VersionId=version)
            except botocore.exceptions.ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    continue  # the version went away since it was listed
                raise
            text = answer.get("SecretString")
            del answer
            if not isinstance(text, str):
                read.binary += 1
                continue
            held = Held(arn, name, None, version, _current(stages), current, _stage(stages), created)
            for field_name, value in [(None, text), *_fields(text)]:
                read.held.append((index.fingerprints(value), replace(held, field=field_name)))
            del text
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        read.trouble = _Trouble(action, exc)
    return read


def _current(stages: list[str]) -> bool:
    return any(s in CURRENT_STAGES for s in stages)


def _stage(stages: list[str]) -> str | None:
    for known in ("AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"):
        if known in stages:
            return known
    return min(stages) if stages else None


def _fields(text: str) -> list[tuple[str, str]]:
    """The fields of a JSON object secret string (as the console's key/value secrets are), each
    as a string; nothing for any other string."""
    if not text.lstrip().startswith("{"):
        return []
    try:
        doc = json.loads(text)
    except ValueError:
        return []
    if not isinstance(doc, dict):
        return []
    return [
        (str(key), value if isinstance(value, str) else json.dumps(value))
        for key, value in list(doc.items())[:MAX_FIELDS]
        if value is not None
    ]

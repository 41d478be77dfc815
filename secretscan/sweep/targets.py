"""What a sweep covers: repositories (a registry's catalog, a list, or an ECR account) and, in each,
the tags that pass the user's filters.

Name filters apply while listing; "newest N" and "created since" need each image's date, which
comes from ECR's push time or the image config's ``created`` field, so they apply once manifests
and configs are known (``sweep.run``).
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from secretscan.errors import SourceError, UsageError
from secretscan.sources.auth import Keychain
from secretscan.sources.reference import ImageRef
from secretscan.sources.registry import Listing, RegistryClient, RegistryOptions

_ECR_TARGET = re.compile(r"^ecr:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)(?:/(?P<account>\d{12}))?$")


@dataclass(frozen=True)
class TagFilter:
    globs: tuple[str, ...] = ()
    """Shell globs over tag names (any may match); none means every tag."""
    regex: re.Pattern[str] | None = None
    newest: int | None = None
    """Keep the N most recently created images per repository."""
    since: datetime | None = None
    """Keep images created at or after this time (UTC)."""

    def accepts_name(self, tag: str) -> bool:
        if self.globs and not any(fnmatch.fnmatchcase(tag, g) for g in self.globs):
            return False
        return self.regex is None or self.regex.search(tag) is not None


@dataclass(frozen=True)
class TaggedImage:
    """A repository's tags, as listed (several tags may name one manifest)."""

    registry: str
    """Where the images are pulled from."""
    repository: str
    tags: tuple[str, ...]
    pushed: dict[str, datetime] = field(default_factory=dict)
    """tag -> push time, where the listing says (ECR)."""
    incomplete: str | None = None
    """Why the tag list ended early (a registry whose pagination does not end), if it did."""


@dataclass(frozen=True)
class SweepTarget:
    """``HOST[:PORT]`` (its catalog, or the given repositories) or ``ecr:REGION[/ACCOUNT]``."""

    text: str
    registry: str
    ecr_region: str | None = None
    ecr_account: str | None = None
    repositories: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str, repositories: Sequence[str] = (), pull_host: str | None = None) -> SweepTarget:
        ecr = _ECR_TARGET.match(text)
        if ecr:
            region, account = ecr.group("region"), ecr.group("account")
            if not pull_host and not account:
                raise UsageError(f"{text}: name the account (ecr:REGION/ACCOUNT) or the pull host (--ecr-registry)")
            registry = pull_host or f"{account}.dkr.ecr.{region}.amazonaws.com"
            return cls(text, registry, region, account, tuple(repositories))
        if "/" in text or not text:
            raise UsageError(f"{text!r}: a sweep target is a registry HOST[:PORT] or ecr:REGION[/ACCOUNT]")
        return cls(text, text, repositories=tuple(repositories))

    def repository_names(self, keychain: Keychain, options: RegistryOptions, limit: int) -> Listing:
        """The repositories named, or all of them (the catalog, or ECR's describe_repositories),
        at most ``limit``; ``incomplete`` says when there were more (or the listing never ended)."""
        if self.repositories:
            names = self.repositories
        elif self.ecr_region:
            pages = _ecr_pages(self, "describe_repositories", "repositories")
            names = tuple(str(r["repositoryName"]) for r in itertools.islice(pages, limit + 1))
        else:
            client = RegistryClient(ImageRef(self.registry, "catalog"), keychain, options)
            try:
                listing = client.listing("/v2/_catalog", "repositories", limit=limit)
            finally:
                client.session.close()
            if listing.incomplete is None:
                return listing
            return Listing(listing.items, f"catalog of {self.registry}: {listing.incomplete}")
        if len(names) > limit:
            return Listing(names[:limit], f"more than {limit} repositories (--max-repositories): the rest were not swept")
        return Listing(names)

    def tagged(self, repository: str, keychain: Keychain, options: RegistryOptions, tags: TagFilter) -> TaggedImage:
        """A repository's tags that pass the name filters (a SourceError names what failed)."""
        if self.ecr_region:
            pushed: dict[str, datetime] = {}
            for detail in _ecr_pages(
                self, "describe_images", "imageDetails", repositoryName=repository, filter={"tagStatus": "TAGGED"}
            ):
                when = detail.get("imagePushedAt")
                for tag in detail.get("imageTags") or []:
                    if tags.accepts_name(str(tag)):
                        pushed[str(tag)] = when if isinstance(when, datetime) else datetime.fromtimestamp(0, UTC)
            return TaggedImage(self.registry, repository, tuple(sorted(pushed)), pushed)
        client = RegistryClient(ImageRef(self.registry, repository), keychain, options)
        try:
            listed = client.listing(f"/v2/{repository}/tags/list", "tags")
        finally:
            client.session.close()
        incomplete = f"tags of {self.registry}/{repository}: {listed.incomplete}" if listed.incomplete else None
        return TaggedImage(
            self.registry, repository, tuple(t for t in listed.items if tags.accepts_name(t)), incomplete=incomplete
        )


def read_repository_file(path: Path) -> list[str]:
    """One repository per line; blank lines and ``#`` comments ignored."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read repository list ({exc.strerror})") from None
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def parse_since(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r}: expected an ISO date such as 2026-01-31 or 2026-01-31T12:00:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_created(value: Any) -> datetime | None:
    """An image config's ``created`` (RFC 3339, often with nanoseconds), or None."""
    if not isinstance(value, str) or not value:
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _ecr_pages(target: SweepTarget, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    import boto3
    import botocore.exceptions

    if target.ecr_account:
        kwargs["registryId"] = target.ecr_account
    try:
        ecr = boto3.client("ecr", region_name=target.ecr_region)
        for page in ecr.get_paginator(operation).paginate(**kwargs):
            yield from page.get(key, [])
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise SourceError(f"{target.text}: ECR {operation} failed ({type(exc).__name__}: {str(exc)[:160]})") from None

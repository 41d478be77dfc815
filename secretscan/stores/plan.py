"""``secretscan migrate plan``: for each hardcoded secret no store manages, where it goes in the
chosen store, the command that stores it (reading the value from stdin), the image change and the
run-time injection — for people (Markdown) and tools (JSON). No value is in a plan."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from secretscan.models import Exposure, Finding, Location, ManagedStatus, ScanReport, SecretStore
from secretscan.stores.model import Destination
from secretscan.terminal import terminal_lines

NOT_CHECKED = "not checked"
"""What plans say of a value a store was not asked about."""
FLAGS = {SecretStore.VAULT: "--vault", SecretStore.AWS_SECRETS: "--aws-secrets"}
"""The option that asks each store."""


@dataclass(frozen=True)
class MigrationItem:
    fingerprint: str
    rule_id: str
    title: str
    redacted: str
    name: str
    place: str
    """Where it goes: a path under the Vault mount, an AWS secret name."""
    target: str
    """How reports and records name it: ``mount/path#value``, the AWS secret name."""
    statuses: Mapping[str, str]
    """store -> its verdict (``unmanaged``), or ``not checked``, for each store."""
    locations: tuple[str, ...]
    image_changes: tuple[str, ...]
    runtime: str
    store_command: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    """The destination's own keys for JSON plans (Vault: mount, path, kv_path, put_command)."""


@dataclass(frozen=True)
class AlreadyManaged:
    redacted: str
    store: SecretStore
    status: ManagedStatus
    ref: str
    """Where the store holds it: ``mount/path#key``, ``ARN#field``."""
    label: str
    """The same for people: ``mount/path#key``, ``name#field``."""


@dataclass(frozen=True)
class MigrationPlan:
    target: str
    """What was scanned."""
    store: SecretStore
    destination: str
    """Where new secrets go, as ``--to`` names it (``secret/secretscan``, ``secretscan/``)."""
    description: str
    """The same, for people: ``Vault KV v2 under `secret/secretscan```."""
    items: tuple[MigrationItem, ...]
    managed: tuple[AlreadyManaged, ...] = ()
    """Findings a store already holds (current or former): nothing to migrate."""
    notes: tuple[str, ...] = ()


def make_plan(report: ScanReport, destination: Destination) -> MigrationPlan:
    items: list[MigrationItem] = []
    managed: list[AlreadyManaged] = []
    used: set[tuple[str, str]] = set()
    for finding in report.findings:
        held = [m for m in finding.managed if m.status is not ManagedStatus.UNMANAGED]
        if held:
            managed.extend(AlreadyManaged(finding.redacted, m.store, m.status, m.ref or "", m.label) for m in held)
            continue
        image = finding.locations[0].image
        name = _unique(_name(finding), image, used)
        place = destination.place(_repository(image), name)
        items.append(
            MigrationItem(
                fingerprint=finding.fingerprint,
                rule_id=finding.rule_id,
                title=finding.title,
                redacted=finding.redacted,
                name=name,
                place=place,
                target=destination.ref(place),
                statuses={
                    store.value: str(match.status) if (match := finding.verdict(store)) else NOT_CHECKED
                    for store in SecretStore
                },
                locations=tuple(f"{loc.image}: {loc.describe()}" for loc in finding.locations),
                image_changes=tuple(dict.fromkeys(_change(loc, name) for loc in finding.locations)),
                runtime=destination.runtime(place, name.upper()),
                store_command=destination.store_command(place),
                fields=destination.plan_fields(place),
            )
        )
    store = destination.kind
    notes = (
        ()
        if any(f.verdict(store) for f in report.findings)
        else (
            f"{store.label} was not consulted ({FLAGS[store]}): secrets it already manages are listed as if they "
            "were not.",
        )
    )
    return MigrationPlan(
        report.target, store, destination.root, destination.describe(), tuple(items), tuple(managed), notes
    )


def _name(finding: Finding) -> str:
    for loc in finding.locations:
        if loc.context and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", loc.context):
            return _slug(loc.context.rsplit(".", 1)[-1] if loc.context.count(".") > 1 else loc.context)
    for loc in finding.locations:
        if loc.layer_index is not None:
            return _slug(loc.path.rsplit("/", 1)[-1])
    return _slug(finding.rule_id)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "secret"


def _unique(name: str, image: str, used: set[tuple[str, str]]) -> str:
    candidate, n = name, 2
    while (image, candidate) in used:
        candidate, n = f"{name}_{n}", n + 1
    used.add((image, candidate))
    return candidate


def _repository(image: str) -> str:
    """``registry:5000/team/app:1.0 [linux/amd64]`` -> ``team/app``."""
    name = image.split(" [", 1)[0].split("@", 1)[0]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        name = rest
    name = re.sub(r":[^/]*$", "", name)
    return "/".join(_slug(part) for part in name.split("/") if part) or "image"


def _change(loc: Location, name: str) -> str:
    var = name.upper()
    if loc.path.startswith("config.Env"):
        return f"Remove `ENV {loc.context or var}` from the Dockerfile; the value is set at run time instead."
    if loc.path.startswith("config.Labels") or loc.path.startswith("manifest.annotations"):
        return "Remove the LABEL/annotation: image metadata is public to anyone who can pull."
    if loc.path.startswith("history["):
        return (
            f"Replace the build argument with a BuildKit secret: `RUN --mount=type=secret,id={name},env={var} …` "
            f"and `docker build --secret id={name},env={var}`; remove the ARG/inline value."
        )
    if loc.path.startswith("config."):
        return f"Remove the value from {loc.path}; read it at run time."
    if loc.exposure is Exposure.REMOVED:
        return (
            f"{loc.path} is {loc.removed_how or 'removed'} in layer {loc.removed_in_layer} but still shipped in "
            f"layer {loc.layer_index}: rebuild so it never enters a layer (`RUN --mount=type=secret` or a "
            f"multi-stage build); deleting it later does not remove it."
        )
    step = f" (added by `{loc.created_by}`)" if loc.created_by else ""
    return f"Stop copying {loc.path.split('!/', 1)[0]} into the image{step}; mount it at run time."


def render_markdown(plan: MigrationPlan) -> str:
    label = plan.store.label
    out = [
        f"# Migration plan for {plan.target}",
        "",
        f"{len(plan.items)} hardcoded secret(s) to move into {plan.description}.",
        "",
    ]
    out += [f"> {note}" for note in plan.notes] + ([""] if plan.notes else [])
    out += [
        f"Order: (1) store each value in {label} with the command below (it reads the value from stdin, never from "
        "the command line); (2) change the image and deploy with run-time injection; (3) rotate the leaked "
        f"credential at its provider and write the new value to {label}; (4) rebuild and push the image, and delete "
        "the old tags: the leaked value stays in their layers.",
        "",
    ]
    for item in plan.items:
        out += [
            f"## {item.title} — {item.redacted}",
            "",
            f"- {label}: `{item.target}` (currently: {item.statuses[plan.store.value]})",
            f"- Store: `{item.store_command}`",
            "- Found at:",
        ]
        out += [f"  - {loc}" for loc in item.locations]
        out += ["- Image changes:"] + [f"  - {change}" for change in item.image_changes]
        out += [f"- Run time: {item.runtime}", ""]
    if plan.managed:
        out += ["## Already managed", ""]
        out += [f"- {m.redacted} — {m.status} value of `{m.label}` in {m.store.label}" for m in plan.managed]
    # each line escaped whole: a location or build step from the image cannot start a line or drive a terminal
    return terminal_lines(out).rstrip() + "\n"


def render_json(plan: MigrationPlan) -> str:
    items = [
        {
            "fingerprint": item.fingerprint,
            "rule_id": item.rule_id,
            "title": item.title,
            "redacted": item.redacted,
            "name": item.name,
            "store": plan.store.value,
            "target": item.target,
            "status": item.statuses[plan.store.value],
            "statuses": dict(item.statuses),
            "vault_status": item.statuses[SecretStore.VAULT.value],
            "locations": list(item.locations),
            "image_changes": list(item.image_changes),
            "runtime": item.runtime,
            "store_command": item.store_command,
            **item.fields,
        }
        for item in plan.items
    ]
    doc = {
        "schema_version": 1,
        "target": plan.target,
        "store": plan.store.value,
        "destination": plan.destination,
        "items": items,
        "already_managed": [
            {"redacted": m.redacted, "store": m.store.value, "status": m.status.value, "path": m.ref, "name": m.label}
            for m in plan.managed
        ],
        "notes": list(plan.notes),
    }
    return json.dumps(doc, indent=2) + "\n"

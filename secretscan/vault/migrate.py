"""Migration of hardcoded secrets into Vault KV v2: a plan for people and tools, and its
application with check-and-set (never overwriting unless forced, safe to re-run)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from secretscan.errors import OutputError
from secretscan.models import Exposure, Finding, Location, ScanReport, VaultStatus
from secretscan.safewrite import PRIVATE_MODE, write_file
from secretscan.terminal import terminal_lines
from secretscan.vault.connect import KvLocation, VaultError
from secretscan.vault.index import VaultIndex

VALUE_KEY = "value"
NOT_CHECKED = "not checked"
"""What plans say of a value Vault was not asked about."""


@dataclass(frozen=True)
class MigrationItem:
    fingerprint: str
    rule_id: str
    title: str
    redacted: str
    name: str
    mount: str
    path: str
    vault_status: VaultStatus | None
    """None: Vault was not asked (no ``--vault``)."""
    locations: tuple[str, ...]
    image_changes: tuple[str, ...]
    runtime: str

    @property
    def kv_path(self) -> str:
        return f"{self.mount}/{self.path}#{VALUE_KEY}"

    @property
    def put_command(self) -> str:
        """Reads the value from stdin (``value=-``): it never appears on a command line."""
        return f"vault kv put -mount={self.mount} -cas=0 {self.path} {VALUE_KEY}=-"


@dataclass(frozen=True)
class MigrationPlan:
    target: str
    destination: str
    items: tuple[MigrationItem, ...]
    managed: tuple[tuple[str, str, str], ...] = ()
    """(redacted, status, vault path) of findings already in Vault: nothing to migrate."""
    notes: tuple[str, ...] = ()


def make_plan(report: ScanReport, destination: KvLocation) -> MigrationPlan:
    items, managed = [], []
    used: set[tuple[str, str]] = set()
    for finding in report.findings:
        if finding.vault and finding.vault.status is not VaultStatus.UNMANAGED:
            managed.append((finding.redacted, finding.vault.status.value, finding.vault.path or ""))
            continue
        image = finding.locations[0].image
        name = _unique(_name(finding), image, used)
        path = "/".join(p for p in (destination.prefix, _repository(image), name) if p)
        items.append(
            MigrationItem(
                fingerprint=finding.fingerprint,
                rule_id=finding.rule_id,
                title=finding.title,
                redacted=finding.redacted,
                name=name,
                mount=destination.mount,
                path=path,
                vault_status=finding.vault.status if finding.vault else None,
                locations=tuple(f"{loc.image}: {loc.describe()}" for loc in finding.locations),
                image_changes=tuple(dict.fromkeys(_change(loc, name) for loc in finding.locations)),
                runtime=_runtime(finding, name, f"{destination.mount}/{path}"),
            )
        )
    notes = (
        ()
        if any(f.vault for f in report.findings)
        else ("Vault was not consulted (--vault): secrets Vault already manages are listed as if they were not.",)
    )
    return MigrationPlan(report.target, str(destination), tuple(items), tuple(managed), notes)


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


def _runtime(finding: Finding, name: str, kv: str) -> str:
    var = name.upper()
    return (
        f"Inject at run time from {kv}: Vault Agent template "
        f'(`{{{{ with secret "{kv.split("/", 1)[0]}/data/{kv.split("/", 1)[1]}" }}}}{{{{ .Data.data.value }}}}{{{{ end }}}}`) '
        f"or, on Kubernetes, the Vault Secrets Operator / External Secrets into env var {var} or a file."
    )


def render_markdown(plan: MigrationPlan) -> str:
    out = [
        f"# Migration plan for {plan.target}",
        "",
        f"{len(plan.items)} hardcoded secret(s) to move into Vault KV v2 under `{plan.destination}`.",
        "",
    ]
    out += [f"> {note}" for note in plan.notes] + ([""] if plan.notes else [])
    out += [
        "Order: (1) store each value in Vault with the command below (it reads the value from stdin, never from "
        "the command line); (2) change the image and deploy with run-time injection; (3) rotate the leaked "
        "credential at its provider and write the new value to Vault; (4) rebuild and push the image, and delete "
        "the old tags: the leaked value stays in their layers.",
        "",
    ]
    for item in plan.items:
        out += [
            f"## {item.title} — {item.redacted}",
            "",
            f"- Vault path: `{item.kv_path}` (currently: {item.vault_status or NOT_CHECKED})",
            f"- Store: `{item.put_command}`",
            "- Found at:",
        ]
        out += [f"  - {loc}" for loc in item.locations]
        out += ["- Image changes:"] + [f"  - {change}" for change in item.image_changes]
        out += [f"- Run time: {item.runtime}", ""]
    if plan.managed:
        out += ["## Already in Vault", ""] + [f"- {r} — {status} value of `{path}`" for r, status, path in plan.managed]
    # each line escaped whole: a location or build step from the image cannot start a line or drive a terminal
    return terminal_lines(out).rstrip() + "\n"


def render_json(plan: MigrationPlan) -> str:
    items = [
        dict(
            asdict(item),
            vault_status=str(item.vault_status or NOT_CHECKED),
            kv_path=item.kv_path,
            put_command=item.put_command,
        )
        for item in plan.items
    ]
    doc = {
        "schema_version": 1,
        "target": plan.target,
        "destination": plan.destination,
        "items": items,
        "already_managed": [{"redacted": r, "status": s, "path": p} for r, s, p in plan.managed],
        "notes": list(plan.notes),
    }
    return json.dumps(doc, indent=2) + "\n"


@dataclass
class ApplyResult:
    written: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def apply_plan(
    client: Any, plan: MigrationPlan, secrets: Mapping[str, str], *, force: bool, record: Path | None
) -> ApplyResult:
    """Write each planned value with check-and-set: create only if there is no current value; an
    existing equal value is left alone; a different one is a conflict unless ``force``. Every write
    names the version it follows (``cas``): 0 for a new path, else the path's latest version, which
    may be a deleted or destroyed one (that counts as no value: the new version goes on top)."""
    import hvac.exceptions
    import requests

    result = ApplyResult()
    compare = VaultIndex()  # only for its keyed hash: values are compared without keeping them
    for item in plan.items:
        value = secrets[item.fingerprint]
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "path": item.kv_path,
            "fingerprint": item.fingerprint,
            "rule_id": item.rule_id,
        }
        try:
            current, version = _read(client, item)
            if current is not None and compare.digest(current) == compare.digest(value):
                entry.update(action="unchanged", version=version)
            elif current is not None and not force:
                entry.update(action="conflict", version=version)
                result.problems.append(
                    f"{item.kv_path} already holds a different value (version {version}): "
                    "left as is (--force overwrites it)"
                )
            else:
                answer = client.secrets.kv.v2.create_or_update_secret(
                    path=item.path, mount_point=item.mount, secret={VALUE_KEY: value}, cas=version
                )
                entry.update(
                    action="overwritten" if current is not None else "created", version=answer["data"]["version"]
                )
        except hvac.exceptions.InvalidRequest:
            entry.update(action="conflict")
            result.problems.append(
                f"{item.kv_path}: another version was written since it was read (check-and-set failed): "
                "re-run to compare again"
            )
        except hvac.exceptions.Forbidden:
            entry.update(action="denied")
            result.problems.append(
                f"{item.kv_path}: permission denied (the token needs create/update on {item.mount}/data/{item.path})"
            )
        except (hvac.exceptions.VaultError, requests.exceptions.RequestException) as exc:
            raise VaultError(f"Vault: writing {item.kv_path} failed ({type(exc).__name__})") from None
        result.written.append(entry)
    if record is not None:
        existing = json.loads(record.read_text()) if record.is_file() else []
        try:  # mode 0600, never through a symlink; a failure must not hide what was already written
            write_file(record, json.dumps(existing + result.written, indent=2) + "\n", mode=PRIVATE_MODE)
        except OutputError as exc:
            result.problems.append(f"{exc} (what was written is listed on standard output only)")
    return result


def _read(client: Any, item: MigrationItem) -> tuple[str | None, int]:
    """(the current value, or None; the path's latest version, 0 when it was never written).

    A latest version that is deleted or destroyed has no value, but KV v2 still counts it: its
    404 answer carries its metadata, and the next write must name that version for check-and-set."""
    import hvac.exceptions

    try:
        answer = client.secrets.kv.v2.read_secret_version(
            path=item.path, mount_point=item.mount, raise_on_deleted_version=True
        )
    except hvac.exceptions.InvalidPath as exc:
        return None, _version_of(exc.json)
    data = answer["data"]["data"] or {}
    value = data.get(VALUE_KEY)
    return (value if isinstance(value, str) else json.dumps(value)), int(answer["data"]["metadata"]["version"])


def _version_of(answer: Any) -> int:
    """``data.metadata.version`` of a KV v2 answer, 0 when it has none (a path never written)."""
    data = answer.get("data") if isinstance(answer, dict) else None
    metadata = data.get("metadata") if isinstance(data, dict) else None
    version = metadata.get("version") if isinstance(metadata, dict) else None
    return version if isinstance(version, int) and version > 0 else 0

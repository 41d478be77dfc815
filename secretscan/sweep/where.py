"""``secretscan where``: incident response from the sweep database, without rescanning — which
images, tags and repositories ship a secret (by fingerprint) or a layer (by digest)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from secretscan.errors import UsageError
from secretscan.sweep.store import Store
from secretscan.terminal import terminal_lines, terminal_safe

_FINGERPRINT = re.compile(r"^ssf1:[0-9a-f]{32}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ShippedIn:
    sweep: int
    registry: str
    repository: str
    manifest_digest: str
    tags: tuple[str, ...]
    where: tuple[str, ...]
    """Paths (for a secret) or ``layer N`` positions (for a layer) inside the image."""


@dataclass(frozen=True)
class WhereAnswer:
    needle: str
    kind: str
    """``secret`` or ``layer``."""
    images: list[ShippedIn] = field(default_factory=list)
    layer_secrets: list[tuple[str, str, str, str]] = field(default_factory=list)
    """For a layer: (fingerprint, rule, severity, redacted) of what it holds."""


def where(store: Store, needle: str, *, latest_only: bool = True) -> WhereAnswer:
    needle = needle.strip()
    grouped: dict[tuple[int, str, str, str], tuple[tuple[str, ...], list[str]]] = {}
    if _FINGERPRINT.match(needle):
        kind = "secret"
        for sweep, registry, repo, digest, tags_json, _rule, layer, path in store.where_secret(needle):
            key = (sweep, registry, repo, digest)
            grouped.setdefault(key, (tuple(json.loads(tags_json)), []))[1].append(
                path + (f" ({layer})" if layer else "")
            )
        answer = WhereAnswer(needle, kind)
    elif _DIGEST.match(needle):
        kind = "layer"
        for sweep, registry, repo, digest, tags_json, position in store.where_layer(needle):
            key = (sweep, registry, repo, digest)
            grouped.setdefault(key, (tuple(json.loads(tags_json)), []))[1].append(f"layer {position}")
        answer = WhereAnswer(needle, kind, layer_secrets=store.layer_secrets(needle))
    else:
        raise UsageError(f"{needle!r}: expected a fingerprint (ssf1:<32 hex>) or a layer digest (sha256:<64 hex>)")
    latest = max((k[0] for k in grouped), default=0)
    for key, (image_tags, places) in sorted(grouped.items(), key=lambda kv: (-kv[0][0], kv[0][1:])):
        if latest_only and key[0] != latest:
            continue
        answer.images.append(ShippedIn(*key, image_tags, tuple(dict.fromkeys(places))))
    return answer


def render_where(answer: WhereAnswer, fmt: str) -> str:
    if fmt == "json":
        doc = {
            "needle": answer.needle,
            "kind": answer.kind,
            "images": [
                {
                    "sweep": i.sweep,
                    "registry": i.registry,
                    "repository": i.repository,
                    "manifest_digest": i.manifest_digest,
                    "tags": list(i.tags),
                    "where": list(i.where),
                }
                for i in answer.images
            ],
            "layer_secrets": [
                {"fingerprint": fp, "rule_id": rule, "severity": sev, "redacted": red}
                for fp, rule, sev, red in answer.layer_secrets
            ],
        }
        return json.dumps(doc, indent=2) + "\n"
    if not answer.images:
        return terminal_safe(f"{answer.needle}: not shipped by any image in the database") + "\n"
    repos = sorted({f"{i.registry}/{i.repository}" for i in answer.images})
    lines = [f"{answer.needle} ({answer.kind}) ships in {len(answer.images)} image(s) of {len(repos)} repository(ies):"]
    for i in answer.images:
        tags = ", ".join(i.tags) or "untagged"
        lines.append(f"  {i.registry}/{i.repository}@{i.manifest_digest} [{tags}] (sweep {i.sweep})")
        lines.extend(f"      {w}" for w in i.where)
    if answer.layer_secrets:
        lines.append("the layer holds:")
        lines.extend(f"  {sev:8} {rule}  {red}  {fp}" for fp, rule, sev, red in answer.layer_secrets)
    # repository names, tags and paths come from registries and images: each line is escaped whole
    return terminal_lines(lines) + "\n"

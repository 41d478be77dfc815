"""``--format html``: one self-contained incident report, readable at a glance.

Each image is a timeline of its layers, base first, each with the build step that made it and its
diff ID. A secret is marked on the layer that introduced it: in a file of that layer, or in the
build step that created it (a token in a RUN line); the layer that later deleted or overwrote the
file says so too; config entries and metadata-only steps have a lane of their own. Below, one card
per secret lists every place it was seen, each with its exposure. The header's count, the severity
buttons and the filter's count all count cards. Severity counts double as filters, with a search
box and exposure switches.

Everything an image controls (paths, build steps, names) is HTML-escaped, and a Content Security
Policy allows only this file's own style and script, by hash: even a missed escape could not run
an image's script. No external assets, so the file works offline and leaks nothing when opened.
"""

from __future__ import annotations

import base64
import enum
import hashlib
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape
from typing import assert_never

from secretscan.models import Exposure, Finding, ImageSummary, KnownTestKey, Location, ScanReport, Severity
from secretscan.report.text import image_digests, layer_note, managed_note, package_content, place

_STYLE = """
:root{--bg:#fafafa;--fg:#1d232b;--muted:#5f6b7a;--line:#d5dbe3;--critical:#8e1b1b;--high:#c2410c;--medium:#a16207;
--low:#1d4ed8;--info:#4b5563}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,sans-serif;background:var(--bg);color:var(--fg)}
header,main{max-width:1180px;margin:0 auto;padding:16px 24px}header h1{margin:0 0 4px;font-size:22px}
.muted{color:var(--muted)}code{font:12.5px ui-monospace,monospace;word-break:break-all}
.controls{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:12px 0;position:sticky;top:0;background:var(--bg);
padding:8px 0;border-bottom:1px solid var(--line)}
.sev{border:1px solid var(--line);border-radius:14px;padding:3px 10px;background:#fff;cursor:pointer;font-weight:600}
.sev[aria-pressed=false]{opacity:.35}.sev .count{font-variant-numeric:tabular-nums;margin-left:4px}
.sev.critical{color:var(--critical)}.sev.high{color:var(--high)}.sev.medium{color:var(--medium)}.sev.low{color:var(--low)}
.sev.info{color:var(--info)}input[type=search]{padding:4px 8px;border:1px solid var(--line);border-radius:6px;min-width:240px}
.image{background:#fff;border:1px solid var(--line);border-radius:8px;margin:16px 0;padding:12px 16px}
.image h2{margin:0;font-size:17px}.timeline{list-style:none;margin:12px 0 0;padding:0 0 0 18px;border-left:3px solid var(--line)}
.layer{position:relative;margin:0 0 10px;padding:6px 10px;border-radius:6px}
.layer::before{content:"";position:absolute;left:-27px;top:11px;width:12px;height:12px;border-radius:50%;background:var(--line)}
.layer.has-findings::before{background:var(--high)}.layer-head{display:flex;gap:10px;align-items:baseline}
.layer-head .idx{font-weight:700;min-width:64px}.layer-head .step{flex:1;color:var(--muted)}
.diff-id{color:var(--muted);max-width:21ch;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;word-break:normal}
ul.marks,ul.removals,ul.locations{list-style:none;margin:6px 0 0;padding:0}ol.cards{list-style:none;margin:0;padding:0}
.mark,.finding{border-left:4px solid var(--info);background:#f6f7f9;margin:4px 0;padding:5px 8px;border-radius:0 6px 6px 0}
.finding{background:#fff;border:1px solid var(--line);border-left-width:4px;padding:8px 12px;margin:8px 0}
.finding:target{outline:2px solid var(--low)}.location{margin:3px 0;padding-left:10px;border-left:2px solid var(--line)}
.critical{border-left-color:var(--critical)}.high{border-left-color:var(--high)}.medium{border-left-color:var(--medium)}
.low{border-left-color:var(--low)}.badge{font-size:11px;font-weight:700;text-transform:uppercase;margin-right:6px}
.kind{font-style:italic;color:var(--muted)}a{color:inherit;font-weight:600}
.exposure{font-size:11.5px;border-radius:10px;padding:1px 7px;margin-left:4px;white-space:nowrap;border:1px solid var(--line)}
.exposure.final{background:#fde8e8;color:var(--critical)}.exposure.removed{background:#fff1e0;color:var(--high)}
.exposure.config{background:#eef2ff;color:var(--low)}.fix{margin-top:4px}
.fate{color:var(--critical);font-weight:600;margin-left:6px}.removal{color:var(--critical);margin:3px 0}
.config-lane{margin-top:10px;border-top:1px dashed var(--line);padding-top:8px}
section#findings h2{font-size:17px;margin:20px 0 0}
section.notes{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 16px;margin:16px 0}
"""

_SCRIPT = """
(function(){
  const cards = Array.from(document.querySelectorAll('li.finding'));
  const marks = Array.from(document.querySelectorAll('li.mark'));
  const places = Array.from(document.querySelectorAll('li.location'));
  const buttons = Array.from(document.querySelectorAll('button.sev'));
  const search = document.getElementById('search');
  const exposure = Array.from(document.querySelectorAll('input.exposure'));
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get('severity')) {
    const wanted = hash.get('severity').split(',');
    buttons.forEach(b => b.setAttribute('aria-pressed', String(wanted.includes(b.dataset.severity))));
  }
  if (hash.get('q')) search.value = hash.get('q');
  function apply() {
    const on = new Set(buttons.filter(b => b.getAttribute('aria-pressed') !== 'false').map(b => b.dataset.severity));
    const kinds = new Set(exposure.filter(e => e.checked).map(e => e.value));
    const q = search.value.trim().toLowerCase();
    const shown = new Set();
    for (const c of cards) {
      const ok = on.has(c.dataset.severity) && c.dataset.exposure.split(' ').some(k => kinds.has(k)) &&
        (!q || c.textContent.toLowerCase().includes(q));
      c.hidden = !ok;
      if (ok) shown.add(c.id);
    }
    for (const m of marks) m.hidden = !(shown.has(m.dataset.finding) && kinds.has(m.dataset.exposure));
    for (const p of places) p.hidden = !kinds.has(p.dataset.exposure);
    document.getElementById('shown').textContent = String(shown.size);
  }
  buttons.forEach(b => b.addEventListener('click', () => {
    b.setAttribute('aria-pressed', String(b.getAttribute('aria-pressed') === 'false')); apply();
  }));
  search.addEventListener('input', apply);
  exposure.forEach(e => e.addEventListener('change', apply));
  apply();
  document.body.dataset.ready = 'true';
})();
"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def render_html(report: ScanReport) -> str:
    counts = {s: 0 for s in reversed(Severity)}
    for f in report.findings:
        counts[f.severity] += 1
    total = len(report.findings)
    places = sum(len(f.locations) for f in report.findings)
    csp = f"default-src 'none'; style-src {_csp_hash(_STYLE)}; script-src {_csp_hash(_SCRIPT)}"
    status = "complete" if report.complete else "incomplete: see what was not scanned below"
    cards = {f.fingerprint: f"finding-{k}" for k, f in enumerate(report.findings)}
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>secretscan: {escape(report.target)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<header>",
        "<h1>secretscan incident report</h1>",
        f'<div class="target"><code>{escape(report.target)}</code></div>',
        f'<div class="muted">secretscan <span id="version">{escape(report.tool_version)}</span>'
        f" · rules <code>{escape(report.rules_digest[:19])}</code> · {_when(report)}"
        f' · <span id="total">{total}</span> finding{"" if total == 1 else "s"}'
        f' (<span id="places">{places}</span> location{"" if places == 1 else "s"})'
        f' in {len(report.images)} image{"" if len(report.images) == 1 else "s"} · <span id="status">{escape(status)}</span></div>',
        "</header><main>",
        '<div class="controls" role="search">',
        *(
            f'<button class="sev {s}" data-severity="{s}" aria-pressed="true">{s}'
            f'<span class="count" id="count-{s}">{n}</span></button>'
            for s, n in counts.items()
        ),
        '<input id="search" type="search" placeholder="filter: rule, path, value, step, digest" aria-label="filter">',
        *(
            f'<label><input class="exposure" type="checkbox" value="{e.value}" checked> {e.value}</label>'
            for e in Exposure
        ),
        f'<span class="muted"><span id="shown">{total}</span> of {total} finding{"" if total == 1 else "s"} shown</span>',
        "</div>",
    ]
    by_image: dict[str, list[tuple[str, Finding, Location]]] = defaultdict(list)
    for f in report.findings:
        for loc in f.locations:
            by_image[loc.image].append((cards[f.fingerprint], f, loc))
    for number, image in enumerate(report.images):
        parts.extend(_image(number, image, by_image.pop(image.name, [])))
    for name, items in by_image.items():  # findings of images without a summary (should not happen)
        parts.extend(_image(len(report.images), ImageSummary(name, None, None, 0, 0, 0), items))
    if report.findings:
        parts.append('<section id="findings"><h2>Findings</h2>')
        parts.append('<p class="muted">One card per secret, with every place it was seen.</p>')
        parts.append('<ol class="cards">' + "".join(_card(cards[f.fingerprint], f) for f in report.findings) + "</ol>")
        parts.append("</section>")
    parts.extend(_notes(report.known_test_keys, report))
    parts.append(f"</main><script>{_SCRIPT}</script></body></html>\n")
    return "\n".join(parts)


def _when(report: ScanReport) -> str:
    """When the scan ran, in UTC (ISO 8601), for the incident record; a report rendered from a
    source that kept no time says so rather than showing the time it was rendered."""
    at = report.started if report.started is not None else report.finished
    if at is None:
        return "scan time not recorded"
    stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f'scanned <time id="scanned-at" datetime="{stamp}">{stamp}</time>'


class _Lane(enum.Enum):
    """Where a location is drawn on an image's timeline."""

    FILE = "in a file"
    """In a layer's filesystem: on the layer that holds the file."""
    STEP = "in build step"
    """In the build history: on the layer the step created."""
    CONFIG = "in the config"
    """In the config, or a metadata-only step: the lane below the layers."""


def _lane(loc: Location) -> tuple[_Lane, int | None]:
    if loc.exposure is not Exposure.CONFIG:
        return _Lane.FILE, loc.layer_index
    step = loc.history_step
    if step is not None and step.layer_index is not None:
        return _Lane.STEP, step.layer_index
    return _Lane.CONFIG, None


def _image(number: int, image: ImageSummary, items: list[tuple[str, Finding, Location]]) -> Iterable[str]:
    per_layer: dict[int | None, list[str]] = defaultdict(list)
    removals: dict[int, list[tuple[str, Finding, Location]]] = defaultdict(list)
    for card, f, loc in items:
        lane, layer = _lane(loc)
        per_layer[layer].append(_mark(card, f, loc, lane))
        if loc.removed_in_layer is not None:
            removals[loc.removed_in_layer].append((card, f, loc))
    yield f'<section class="image" id="image-{number}">'
    yield f"<h2>{escape(image.name)}</h2>"
    facts = [f'{label} <code class="digest">{escape(digest)}</code>' for label, digest in image_digests(image)]
    facts += [escape(image.platform or ""), f"{image.layers} layers", f"{image.files_scanned} files"]
    facts.append(_size(image.bytes_scanned) + " searched")
    facts.append(escape(package_content(image) or ""))
    yield f'<div class="muted">{" · ".join(x for x in facts if x)}</div>'
    details = {d.index: d for d in image.layer_details}
    indexes = sorted(set(details) | {i for i in per_layer if i is not None} | set(removals))
    yield '<ol class="timeline">'
    for index in indexes:
        d = details.get(index)
        here = per_layer.get(index, [])
        cls = "layer has-findings" if here else "layer"
        yield f'<li class="{cls}" id="image-{number}-layer-{index}" data-layer="{index}">'
        step = escape(d.created_by or "") if d else ""
        size = _size(d.bytes) if d else ""
        digest = escape(d.digest) if d and d.digest else ""
        digest = f'<code class="diff-id" title="diff ID {digest}">{digest}</code>' if digest else ""
        yield (
            f'<div class="layer-head"><span class="idx">layer {index}</span>'
            f'<code class="step">{step or "(build step unknown)"}</code>{digest}<span class="muted">{size}</span></div>'
        )
        if here:
            yield '<ul class="marks">' + "".join(here) + "</ul>"
        if index in removals:
            yield (
                '<ul class="removals">'
                + "".join(
                    f'<li class="removal">{escape(loc.removed_how or "deleted")} here: <code>{escape(loc.path)}</code> '
                    f'(secret <a href="#{card}">{escape(f.redacted)}</a> from layer {loc.layer_index} — still in that layer\'s blob)</li>'
                    for card, f, loc in removals[index]
                )
                + "</ul>"
            )
        yield "</li>"
    yield "</ol>"
    config = per_layer.get(None, [])
    if config:
        yield '<div class="config-lane"><b>Image config and metadata-only build steps</b> (visible with docker inspect)'
        yield '<ul class="marks">' + "".join(config) + "</ul></div>"
    yield "</section>"


def _mark(card: str, f: Finding, loc: Location, lane: _Lane) -> str:
    """One place on the timeline: what was found, how it got there, and a link to its card."""
    sev = str(f.severity)
    where = loc.path + (f":{loc.line}" if loc.line else "")
    ctx = f" ({escape(loc.context)})" if loc.context else ""
    note = layer_note(loc) if lane is _Lane.CONFIG else None
    ctx += f" [{escape(note)}]" if note else ""
    return (
        f'<li class="mark {sev}" data-finding="{card}" data-severity="{sev}" data-exposure="{loc.exposure.value}"'
        f' data-lane="{lane.name.lower()}">'
        f'<span class="badge">{sev}</span><a href="#{card}">{escape(f.title)}</a> '
        f'<code class="value">{escape(_value(f))}</code> <span class="kind">{lane.value}</span> '
        f"<code>{escape(where)}</code>{ctx} {_exposure(loc)}</li>"
    )


def _card(card: str, f: Finding) -> str:
    """One secret: what it is, what to do, and every place it was seen (each with its exposure)."""
    sev = str(f.severity)
    kinds = " ".join(e.value for e in Exposure if any(loc.exposure is e for loc in f.locations))
    extra = []
    if f.verification is not None:
        extra.append(f'<span class="fate">{escape(str(f.verification.verdict))}</span>')
    extra.extend(f'<span class="managed">{escape(str(m.store))}: {escape(str(m.status))}</span>' for m in f.managed)
    held = "".join(
        f'<div class="muted managed-note">{escape(m.store.label)}: <code>{escape(managed_note(m))}</code></div>'
        for m in f.managed
        if m.secret is not None
    )
    places = "".join(
        f'<li class="location" data-exposure="{loc.exposure.value}"><code>{escape(loc.image)}</code>: '
        f'<code class="where">{escape(place(loc))}</code>'
        + f" {_exposure(loc)}"
        + (f'<div class="muted">added by: <code>{escape(loc.created_by)}</code></div>' if loc.created_by else "")
        + "</li>"
        for loc in f.locations
    )
    n = len(f.locations)
    return (
        f'<li class="finding {sev}" id="{card}" data-severity="{sev}" data-exposure="{kinds}"'
        f' data-rule="{escape(f.rule_id)}" data-fingerprint="{escape(f.fingerprint)}">'
        f'<span class="badge">{sev}</span><b>{escape(f.title)}</b> <code class="value">{escape(_value(f))}</code> '
        f'{" ".join(extra)}<span class="muted">{n} location{"" if n == 1 else "s"}</span>'
        f'<div class="muted"><code>{escape(f.rule_id)}</code> · <code>{escape(f.fingerprint)}</code>'
        f" · confidence {escape(f.confidence)}</div>"
        f"{held}"
        f'<ul class="locations">{places}</ul>'
        f'<div class="fix">fix: {escape(f.remediation)}</div>'
        "</li>"
    )


def _value(f: Finding) -> str:
    return f.secret if f.secret is not None else f.redacted


def _exposure(loc: Location) -> str:
    """The exposure of one place, labelled: every kind of ``Exposure`` has its words here."""
    match loc.exposure:
        case Exposure.FINAL:
            text = "final: in the final filesystem, read by anyone who runs the image"
        case Exposure.REMOVED:
            how = loc.removed_how or "removed"
            text = f"removed: {how} in layer {loc.removed_in_layer}, still in layer {loc.layer_index}'s blob"
        case Exposure.CONFIG:
            text = "config: in the image config or build history, shown by docker inspect"
        case _:
            assert_never(loc.exposure)
    return f'<span class="exposure {loc.exposure.value}" data-exposure="{loc.exposure.value}">{escape(text)}</span>'


def _notes(known: tuple[KnownTestKey, ...], report: ScanReport) -> Iterable[str]:
    if report.skipped or report.errors:
        yield '<section class="notes" id="not-scanned"><b>Not scanned, or could not be read</b><ul>'
        for error in report.errors:
            yield f"<li>error: {escape(error)}</li>"
        for s in report.skipped:
            yield f"<li><code>{escape(s.what)}</code>: {escape(s.reason)}</li>"
        yield "</ul></section>"
    if known:
        yield '<section class="notes" id="known-test-keys"><b>Published test keys</b> (informational)<ul>'
        for k in known:
            yield f"<li><code>{escape(k.redacted)}</code> {escape(k.source)} · {len(k.locations)} place(s)</li>"
        yield "</ul></section>"
    if report.suppressed:
        yield f'<section class="notes">{report.suppressed} finding(s) suppressed by the allowlist or baseline.</section>'


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)

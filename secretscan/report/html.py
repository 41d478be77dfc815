"""``--format html``: one self-contained incident report, readable at a glance.

Each image is a timeline of its layers, base first, each with the build step that made it. A
finding sits on the layer that introduced it; the layer that later deleted or overwrote the file
says so too; config and history findings have a lane of their own. Severity counts double as
filters, with a search box and exposure switches.

Everything an image controls (paths, build steps, names) is HTML-escaped, and a Content Security
Policy allows only this file's own style and script, by hash: even a missed escape could not run
an image's script. No external assets, so the file works offline and leaks nothing when opened.
"""

from __future__ import annotations

import base64
import hashlib
from collections import defaultdict
from collections.abc import Iterable
from html import escape

from secretscan.models import Exposure, Finding, ImageSummary, KnownTestKey, Location, ScanReport, Severity

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
ul.findings,ul.removals{list-style:none;margin:6px 0 0;padding:0}
.finding{border-left:4px solid var(--info);background:#f6f7f9;margin:4px 0;padding:5px 8px;border-radius:0 6px 6px 0}
.finding.critical{border-color:var(--critical)}.finding.high{border-color:var(--high)}.finding.medium{border-color:var(--medium)}
.finding.low{border-color:var(--low)}.badge{font-size:11px;font-weight:700;text-transform:uppercase;margin-right:6px}
.fate{color:var(--critical);font-weight:600;margin-left:6px}.removal{color:var(--critical);margin:3px 0}
.config-lane{margin-top:10px;border-top:1px dashed var(--line);padding-top:8px}
section.notes{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 16px;margin:16px 0}
"""

_SCRIPT = """
(function(){
  const findings = Array.from(document.querySelectorAll('.finding'));
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
    let shown = 0;
    for (const f of findings) {
      const ok = on.has(f.dataset.severity) && kinds.has(f.dataset.exposure) &&
        (!q || f.textContent.toLowerCase().includes(q));
      f.hidden = !ok;
      if (ok) shown++;
    }
    document.getElementById('shown').textContent = String(shown);
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
    csp = f"default-src 'none'; style-src {_csp_hash(_STYLE)}; script-src {_csp_hash(_SCRIPT)}"
    status = "complete" if report.complete else "incomplete: see what was not scanned below"
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
        f'<div class="muted">secretscan {escape(report.tool_version)} · rules <code>{escape(report.rules_digest[:19])}</code>'
        f' · {len(report.findings)} finding(s) in {len(report.images)} image(s) · <span id="status">{escape(status)}</span></div>',
        "</header><main>",
        '<div class="controls" role="search">',
        *(
            f'<button class="sev {s}" data-severity="{s}" aria-pressed="true">{s}'
            f'<span class="count" id="count-{s}">{n}</span></button>'
            for s, n in counts.items()
        ),
        '<input id="search" type="search" placeholder="filter: rule, path, value, step" aria-label="filter">',
        *(
            f'<label><input class="exposure" type="checkbox" value="{e.value}" checked> {label}</label>'
            for e, label in ((Exposure.FINAL, "final"), (Exposure.REMOVED, "removed"), (Exposure.CONFIG, "config"))
        ),
        '<span class="muted"><span id="shown">0</span> shown</span>',
        "</div>",
    ]
    by_image: dict[str, list[tuple[Finding, Location]]] = defaultdict(list)
    for f in report.findings:
        for loc in f.locations:
            by_image[loc.image].append((f, loc))
    for number, image in enumerate(report.images):
        parts.extend(_image(number, image, by_image.pop(image.name, [])))
    for name, items in by_image.items():  # findings of images without a summary (should not happen)
        parts.extend(_image(len(report.images), ImageSummary(name, None, None, 0, 0, 0), items))
    parts.extend(_notes(report.known_test_keys, report))
    parts.append(f"</main><script>{_SCRIPT}</script></body></html>\n")
    return "\n".join(parts)


def _image(number: int, image: ImageSummary, items: list[tuple[Finding, Location]]) -> Iterable[str]:
    per_layer: dict[int | None, list[tuple[Finding, Location]]] = defaultdict(list)
    removals: dict[int, list[tuple[Finding, Location]]] = defaultdict(list)
    for f, loc in items:
        per_layer[loc.layer_index if loc.exposure is not Exposure.CONFIG else None].append((f, loc))
        if loc.removed_in_layer is not None:
            removals[loc.removed_in_layer].append((f, loc))
    yield f'<section class="image" id="image-{number}">'
    yield f"<h2>{escape(image.name)}</h2>"
    facts = [f"<code>{escape(image.digest)}</code>" if image.digest else "", escape(image.platform or "")]
    facts += [f"{image.layers} layers", f"{image.files_scanned} files", _size(image.bytes_scanned) + " scanned"]
    if image.package_files:
        facts.append(f"{image.package_files} files ({_size(image.package_bytes)}) installed by package managers")
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
        yield (
            f'<div class="layer-head"><span class="idx">layer {index}</span>'
            f'<code class="step">{step or "(build step unknown)"}</code><span class="muted">{size}</span></div>'
        )
        if here:
            yield '<ul class="findings">' + "".join(_finding(f, loc) for f, loc in here) + "</ul>"
        if index in removals:
            yield (
                '<ul class="removals">'
                + "".join(
                    f'<li class="removal">{escape(loc.removed_how or "deleted")} here: <code>{escape(loc.path)}</code> '
                    f"(secret {escape(f.redacted)} from layer {loc.layer_index} — still in that layer's blob)</li>"
                    for f, loc in removals[index]
                )
                + "</ul>"
            )
        yield "</li>"
    yield "</ol>"
    config = per_layer.get(None, [])
    if config:
        yield '<div class="config-lane"><b>Image config and build history</b> (visible with docker inspect)'
        yield '<ul class="findings">' + "".join(_finding(f, loc) for f, loc in config) + "</ul></div>"
    yield "</section>"


def _finding(f: Finding, loc: Location) -> str:
    where = escape(loc.path) + (f":{loc.line}" if loc.line else "")
    extra = []
    if loc.context:
        extra.append(f"({escape(loc.context)})")
    if loc.exposure is Exposure.REMOVED and loc.removed_in_layer is not None:
        extra.append(
            f'<span class="fate">{escape(loc.removed_how or "deleted")} in layer {loc.removed_in_layer}</span>'
        )
    if f.verification is not None:
        extra.append(f'<span class="fate">{escape(str(f.verification.verdict))}</span>')
    if f.vault is not None:
        extra.append(f"<span>vault: {escape(str(f.vault.status))}</span>")
    sev = str(f.severity)
    value = escape(f.secret if f.secret is not None else f.redacted)
    return (
        f'<li class="finding {sev}" data-severity="{sev}" data-exposure="{loc.exposure.value}" data-rule="{escape(f.rule_id)}">'
        f'<span class="badge">{sev}</span><b>{escape(f.title)}</b> <code class="value">{value}</code> '
        f'<span class="path"><code>{where}</code></span> {" ".join(extra)}'
        f'<div class="muted"><code>{escape(f.rule_id)}</code> · <code>{escape(f.fingerprint)}</code> · {escape(f.remediation)}</div>'
        "</li>"
    )


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

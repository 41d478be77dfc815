"""What a run's report files are: which format each gets, which findings they show, and the one
line that tells a terminal where they went.

* **Format.** ``--format`` wins. Without it, the name given to ``-o`` decides (``report.html`` is
  an HTML report, not text in a file called .html), then ``SECRETSCAN_FORMAT``, then text. A
  format the file's extension contradicts (``-f json -o report.html``) is refused before the scan:
  the file would open as garbage in whatever the extension promises. An extension that names no
  format (``.txt``, ``.log``, none) takes any.
* **``--severity``** is a display filter: findings outside the listed levels are left out of every
  report written, and still count for ``--fail-on`` (the gate and the view are separate, as in
  trivy). The summary line says how many were left out.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from secretscan.errors import UsageError
from secretscan.models import ScanReport, Severity
from secretscan.report import OutputFormat
from secretscan.terminal import terminal_safe

FORMAT_ENV = "SECRETSCAN_FORMAT"

_BY_EXTENSION: tuple[tuple[str, OutputFormat, frozenset[OutputFormat]], ...] = (
    # (name ending, the format it implies, the formats it may hold), longest ending first
    (".sarif.json", OutputFormat.SARIF, frozenset({OutputFormat.SARIF})),
    (".sarif", OutputFormat.SARIF, frozenset({OutputFormat.SARIF})),
    (".json", OutputFormat.JSON, frozenset({OutputFormat.JSON, OutputFormat.SARIF, OutputFormat.GITLAB})),
    (".html", OutputFormat.HTML, frozenset({OutputFormat.HTML})),
    (".htm", OutputFormat.HTML, frozenset({OutputFormat.HTML})),
    (".xml", OutputFormat.JUNIT, frozenset({OutputFormat.JUNIT})),
)
GITLAB_REPORT_NAME = "gl-secret-detection-report.json"
"""The name GitLab's documentation gives the secret-detection artifact: a ``.json`` file so named
(or starting ``gl-secret-detection``) holds that format unless ``-f`` says otherwise."""


def format_of(path: Path) -> OutputFormat | None:
    """The format a file name implies, or None (``.txt``, ``.log``, no extension)."""
    name = path.name.lower()
    if name.startswith("gl-secret-detection") and name.endswith(".json"):
        return OutputFormat.GITLAB
    for ending, implied, _ in _BY_EXTENSION:
        if name.endswith(ending):
            return implied
    return None


def check_format(fmt: OutputFormat, path: Path, option: str) -> None:
    """Refuse a format the file's extension contradicts; ``option`` names where ``fmt`` came from."""
    name = path.name.lower()
    for ending, _, allowed in _BY_EXTENSION:
        if name.endswith(ending):
            if fmt not in allowed:
                names = [f.value for f in OutputFormat if f in allowed]
                fits = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]} do"
                fits += " does" if len(names) == 1 else ""
                raise UsageError(
                    f"{path}: {option} does not fit a {ending} file ({fits}): rename the file or change the format"
                )
            return


def report_format(explicit: str | None, output: Path | None) -> OutputFormat:
    """``-f``, else what ``-o``'s name implies, else ``SECRETSCAN_FORMAT``, else text."""
    if explicit is not None:
        fmt = OutputFormat(explicit)  # argparse checked the choice
        if output is not None:
            check_format(fmt, output, f"--format {fmt.value}")
        return fmt
    implied = format_of(output) if output is not None else None
    if implied is not None:
        return implied
    from_env = os.environ.get(FORMAT_ENV)
    if from_env:
        try:
            fmt = OutputFormat(from_env.strip())
        except ValueError:
            known = ", ".join(f.value for f in OutputFormat)
            raise UsageError(f"{FORMAT_ENV}={from_env!r}: unknown format (known: {known})") from None
        if output is not None:
            check_format(fmt, output, f"{FORMAT_ENV}={fmt.value}")
        return fmt
    return OutputFormat.TEXT


def parse_also(items: Iterable[str]) -> list[tuple[OutputFormat, Path]]:
    """``--also FORMAT=FILE`` items; a format the file's extension contradicts is refused."""
    out = []
    known = ", ".join(f.value for f in OutputFormat)
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not path or name not in {f.value for f in OutputFormat}:
            raise UsageError(f"--also {item!r}: expected FORMAT=FILE with FORMAT one of {known}")
        fmt = OutputFormat(name)
        check_format(fmt, Path(path), f"--also {name}")
        out.append((fmt, Path(path)))
    return out


def parse_severities(text: str | None) -> frozenset[Severity] | None:
    """``--severity high,critical`` -> those levels; None (no filter) when not given."""
    if text is None:
        return None
    levels = set()
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            levels.add(Severity.parse(part))
        except ValueError as exc:
            raise UsageError(f"--severity: {exc}") from None
    if not levels:
        raise UsageError("--severity: name at least one level, e.g. --severity high,critical")
    return frozenset(levels)


def shown(report: ScanReport, severities: frozenset[Severity] | None) -> ScanReport:
    """The report as written: only findings at the ``--severity`` levels (all without a filter)."""
    if severities is None:
        return report
    return replace(report, findings=tuple(f for f in report.findings if f.severity in severities))


def summary_line(report: ScanReport, hidden: int, files: Sequence[tuple[OutputFormat, Path]]) -> str:
    """``secretscan: 3 findings (1 critical, 2 high); report written to r.json (json)``: what a
    terminal shows when the report itself went to files."""
    total = len(report.findings) + hidden
    parts = []
    if total:
        by_level = [
            f"{n} {level}"
            for level in sorted(Severity, reverse=True)
            if (n := sum(1 for f in report.findings if f.severity == level))
        ]
        counted = f" ({', '.join(by_level)})" if by_level else ""
        parts.append(f"{total} finding{'s' if total != 1 else ''}{counted}")
    else:
        parts.append("no secrets found")
    if hidden:
        parts.append(f"{hidden} not shown (--severity; {'it counts' if hidden == 1 else 'they count'} for --fail-on)")
    if report.suppressed:
        parts.append(f"{report.suppressed} suppressed by the allowlist or baseline")
    if report.skipped:
        parts.append(f"{len(report.skipped)} not fully scanned")
    if report.errors:
        parts.append("scan incomplete (errors above)")
    written = ", ".join(f"{path} ({fmt.value})" for fmt, path in files)
    text = ", ".join(parts) + (f"; report written to {written}" if written else "")
    return "secretscan: " + terminal_safe(text)

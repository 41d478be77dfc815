"""The Python API: what other tools embed. ``scan_image`` does what ``secretscan scan`` does and
returns the typed ``ScanReport`` instead of printing it; ``report_json`` gives the versioned JSON
document of ``--format json`` (``REPORT_SCHEMA_VERSION``, ``docs/report-schema.json``).

Everything here is keyword-only after the image reference, so new options never break callers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from secretscan.config import ScanConfig, load_config, with_limits
from secretscan.detection import Detection
from secretscan.models import ScanReport
from secretscan.report.json_report import SCHEMA_VERSION, report_dict
from secretscan.scan import Scanner
from secretscan.sources import SourceOptions, open_source
from secretscan.sources.auth import Credentials, default_keychain
from secretscan.sources.registry_options import RegistryOptions

REPORT_SCHEMA_VERSION = SCHEMA_VERSION


def scan_image(
    ref: str,
    *,
    config: ScanConfig | str | Path | None = None,
    rules: Sequence[Path] = (),
    limits: Mapping[str, int | str] | None = None,
    show_secrets: bool = False,
    baseline: frozenset[str] = frozenset(),
    credentials: Credentials | None = None,
    registry: RegistryOptions | None = None,
    prefer: str = "auto",
    jobs: int | None = None,
) -> ScanReport:
    """Scan one image reference, as the CLI names them (``docker://``, ``docker-archive:``,
    ``oci:``, ``dir:``, a path or a bare ``REPO:TAG``).

    ``config`` is a ``ScanConfig`` or the path (``str`` or ``Path``) of a ``secretscan.yaml``;
    ``rules`` adds rule directories; ``limits`` overrides single limits by name, with the values
    ``--limit`` takes (``2``, ``"8GiB"``). ``credentials`` (never logged) go to
    every registry of the run; without them the usual keychain applies (environment, docker and
    podman auth files, credential helpers, ECR). Raises ``SecretScanError`` (a one-line message)
    when nothing could be scanned; partial trouble is in ``report.errors`` and ``report.skipped``.
    """
    settings = config if isinstance(config, ScanConfig) else load_config(config, required=config is not None)
    settings = with_limits(settings, dict(limits or {}))
    settings = replace(
        settings,
        rule_dirs=settings.rule_dirs + tuple(Path(r).resolve() for r in rules),
        show_secrets=show_secrets,
        jobs=jobs if jobs is not None else settings.jobs,
    )
    scanner = Scanner(settings, Detection.for_config(settings), baseline=baseline)
    options = SourceOptions(default_keychain(credentials), registry or RegistryOptions(), prefer)
    return scanner.scan(open_source(ref, options))


def report_json(report: ScanReport) -> dict[str, Any]:
    """The ``--format json`` document of a report (``schema_version`` = ``REPORT_SCHEMA_VERSION``)."""
    return report_dict(report)

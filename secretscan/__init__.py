"""secretscan: find leaked credentials in container images.

The Python API (typed; see ``docs/api.md``)::

    from secretscan import scan_image, Severity
    report = scan_image("docker-archive:app.tar")
    for finding in report.findings:
        if finding.severity >= Severity.HIGH:
            print(finding.rule_id, finding.redacted, finding.locations[0].describe())

Names are imported on first use, so ``import secretscan`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from secretscan.version import __version__

_API = {
    "scan_image": "secretscan.api",
    "report_json": "secretscan.api",
    "REPORT_SCHEMA_VERSION": "secretscan.api",
    "ScanConfig": "secretscan.config",
    "Limits": "secretscan.limits",
    "Credentials": "secretscan.sources.auth",
    "RegistryOptions": "secretscan.sources.registry_options",
    "SecretScanError": "secretscan.errors",
    "ScanReport": "secretscan.models",
    "Finding": "secretscan.models",
    "Location": "secretscan.models",
    "Severity": "secretscan.models",
    "Exposure": "secretscan.models",
    "ImageSummary": "secretscan.models",
    "KnownTestKey": "secretscan.models",
    "Skipped": "secretscan.models",
    "Verification": "secretscan.models",
    "Verdict": "secretscan.models",
    "VaultMatch": "secretscan.models",
    "VaultStatus": "secretscan.models",
    "ManagedMatch": "secretscan.models",
    "ManagedStatus": "secretscan.models",
    "SecretStore": "secretscan.models",
}
__all__ = ["__version__", *_API]

if TYPE_CHECKING:  # the same names, for type checkers (explicit re-exports)
    from secretscan.api import REPORT_SCHEMA_VERSION as REPORT_SCHEMA_VERSION
    from secretscan.api import report_json as report_json
    from secretscan.api import scan_image as scan_image
    from secretscan.config import ScanConfig as ScanConfig
    from secretscan.errors import SecretScanError as SecretScanError
    from secretscan.limits import Limits as Limits
    from secretscan.models import Exposure as Exposure
    from secretscan.models import Finding as Finding
    from secretscan.models import ImageSummary as ImageSummary
    from secretscan.models import KnownTestKey as KnownTestKey
    from secretscan.models import Location as Location
    from secretscan.models import ManagedMatch as ManagedMatch
    from secretscan.models import ManagedStatus as ManagedStatus
    from secretscan.models import ScanReport as ScanReport
    from secretscan.models import SecretStore as SecretStore
    from secretscan.models import Severity as Severity
    from secretscan.models import Skipped as Skipped
    from secretscan.models import VaultMatch as VaultMatch
    from secretscan.models import VaultStatus as VaultStatus
    from secretscan.models import Verdict as Verdict
    from secretscan.models import Verification as Verification
    from secretscan.sources.auth import Credentials as Credentials
    from secretscan.sources.registry_options import RegistryOptions as RegistryOptions


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'secretscan' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)

"""``python -m secretscan.prebuild DIR``: the built-in rule set's compiled artefacts (the Hyperscan
databases, the memo of the values the rule pack publishes, its self-identifying rules), written to DIR.

The wheel build (``setup.py``) writes them into the package and ``make install`` into a
checkout, so that a fresh install, a container image or a CI runner with an empty cache does not
spend seconds compiling on its first scan (``secretscan/detect/artefacts.py`` reads them).
"""

from __future__ import annotations

import sys
from pathlib import Path

from secretscan.detect.artefacts import ARTEFACT_PATTERNS, ArtefactStore
from secretscan.detection import Detection

MANIFEST = "MANIFEST"


def prebuild(directory: Path) -> list[str]:
    """Replace the artefacts in ``directory`` with the built-in rule set's; their names."""
    directory.mkdir(parents=True, exist_ok=True)
    for pattern in ARTEFACT_PATTERNS:
        for stale in directory.glob(pattern):
            stale.unlink()
    (directory / MANIFEST).unlink(missing_ok=True)
    # computed, never read back: not even from a shipped directory of the package running this
    detection = Detection.build([], b"prebuild", store=ArtefactStore(directory, shipped_dir=None))
    if detection.engine.prefilter is None:
        raise RuntimeError("Hyperscan is not installed: there is no database to build")
    names = sorted(p.name for pattern in ARTEFACT_PATTERNS for p in directory.glob(pattern))
    (directory / MANIFEST).write_text("".join(f"{name}\n" for name in names))
    return names


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m secretscan.prebuild DIR", file=sys.stderr)
        return 2
    try:
        names = prebuild(Path(args[0]))
    except (OSError, RuntimeError) as exc:
        print(f"secretscan.prebuild: {exc}", file=sys.stderr)
        return 1
    print(f"secretscan.prebuild: wrote {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``docker secretscan``: secretscan as a Docker CLI plugin.

The docker CLI finds ``docker-secretscan`` in ``$DOCKER_CONFIG/cli-plugins`` (default
``~/.docker/cli-plugins``), asks it for ``docker-cli-plugin-metadata``, and runs it as
``docker-secretscan secretscan ARGS`` for ``docker secretscan ARGS``. Without a subcommand the
arguments go to ``secretscan scan``, so the pre-push guard reads naturally::

    docker secretscan --fail-on high myapp:1.4 && docker push myapp:1.4
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from secretscan.safewrite import write_file
from secretscan.version import __version__

PLUGIN_NAME = "secretscan"
SUBCOMMANDS = {"scan", "sweep", "report", "where", "baseline", "migrate", "rules"}


def metadata() -> dict[str, str]:
    """The plugin metadata the docker CLI reads (schema 0.1.0)."""
    return {
        "SchemaVersion": "0.1.0",
        "Vendor": "secretscan",
        "Version": __version__,
        "ShortDescription": "Find leaked credentials in an image before it is pushed",
    }


def plugin_main(argv: list[str], main: Callable[[list[str]], int]) -> int:
    """Answer the docker CLI: the metadata it asks for, or ``main`` (the secretscan command line,
    passed in by the plugin script: this module sits below the CLI that installs it)."""
    args = argv[1:]
    if args[:1] == ["docker-cli-plugin-metadata"]:
        print(json.dumps(metadata()))
        return 0
    if args[:1] == [PLUGIN_NAME]:
        args = args[1:]
    if not args or (args[0] not in SUBCOMMANDS and args[0] != "--version"):
        args = ["scan", *args]
    return main(args)


def plugin_dir() -> Path:
    config = os.environ.get("DOCKER_CONFIG")
    return (Path(config) if config else Path.home() / ".docker") / "cli-plugins"


def install(directory: Path | None = None) -> Path:
    """Write the ``docker-secretscan`` executable; it runs this secretscan (same interpreter)."""
    target_dir = directory or plugin_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"docker-{PLUGIN_NAME}"
    script = (
        f"#!{sys.executable}\n"
        "# Docker CLI plugin written by `secretscan install-docker-plugin`: `docker secretscan IMAGE`.\n"
        "import sys\n\n"
        "from secretscan.cli import main\n"
        "from secretscan.docker_plugin import plugin_main\n\n"
        "sys.exit(plugin_main(sys.argv, main))\n"
    )
    write_file(target, script, mode=0o755)  # a fresh file renamed into place, never through a symlink
    return target

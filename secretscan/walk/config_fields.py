"""The image config and build history as scannable text, one location per entry.

Env, Labels, annotations, Cmd, Entrypoint, Healthcheck, OnBuild, User and every history
``created_by`` are scanned by default: build-args (``RUN |2 TOKEN=… …``), ``ARG`` defaults and
inline tokens in RUN lines end up there, and ``docker inspect`` shows them to anyone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from secretscan.image.model import ImageConfig


@dataclass(frozen=True, slots=True)
class ConfigText:
    field: str
    """``config.Env[2]``, ``config.Labels["k"]``, ``manifest.annotations["k"]``, ``history[5].created_by``."""
    text: str
    created_by: str | None
    """The build step that produced the entry, when history tells."""


def config_texts(config: ImageConfig, annotations: dict[str, str]) -> Iterator[ConfigText]:
    cfg = config.container_config
    for i, env in enumerate(_strings(cfg.get("Env"))):
        name = env.split("=", 1)[0]
        yield ConfigText(f"config.Env[{i}]", env, _step_mentioning(config, ("ENV", "ARG"), name))
    labels = cfg.get("Labels")
    if isinstance(labels, dict):
        for key, value in labels.items():
            yield ConfigText(
                f"config.Labels[{json.dumps(str(key))}]",
                f"{key}={value}",
                _step_mentioning(config, ("LABEL",), str(key)),
            )
    for key, value in annotations.items():
        yield ConfigText(f"manifest.annotations[{json.dumps(key)}]", f"{key}={value}", None)
    for name in ("Cmd", "Entrypoint"):
        parts = _strings(cfg.get(name))
        if parts:
            yield ConfigText(f"config.{name}", " ".join(parts), _step_mentioning(config, (name.upper(),), ""))
    health = cfg.get("Healthcheck")
    if isinstance(health, dict) and _strings(health.get("Test")):
        yield ConfigText(
            "config.Healthcheck", " ".join(_strings(health.get("Test"))), _step_mentioning(config, ("HEALTHCHECK",), "")
        )
    for i, trigger in enumerate(_strings(cfg.get("OnBuild"))):
        yield ConfigText(f"config.OnBuild[{i}]", trigger, _step_mentioning(config, ("ONBUILD",), ""))
    if isinstance(cfg.get("User"), str) and cfg["User"]:
        yield ConfigText("config.User", cfg["User"], _step_mentioning(config, ("USER",), ""))
    for entry in config.history:
        if entry.created_by:
            yield ConfigText(f"history[{entry.index}].created_by", entry.created_by, entry.created_by)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, (str, int, float))]
    return []


def _step_mentioning(config: ImageConfig, instructions: tuple[str, ...], name: str) -> str | None:
    """The last history step that sets ``name`` with one of ``instructions`` (history is in build
    order and later steps win, as in the Dockerfile)."""
    # The instruction starts the step (BuildKit: "CMD [...]"; classic builder: "/bin/sh -c #(nop)  CMD [...]"),
    # so "HEALTHCHECK CMD ..." is not mistaken for a CMD step.
    pattern = re.compile(
        r"(?:^|#\(nop\)\s+)(?:" + "|".join(instructions) + r")\b" + (r"\s+" + re.escape(name) + r"\b" if name else ""),
    )
    found = None
    for entry in config.history:
        if pattern.search(entry.created_by):
            found = entry.created_by
    return found

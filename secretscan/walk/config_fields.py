"""The image config and build history as scannable text, one location per entry.

Env, Labels, annotations, Cmd, Entrypoint, Healthcheck, OnBuild, User and every history
``created_by`` are scanned by default: build-args (``RUN |2 TOKEN=… …``), ``ARG`` defaults and
inline tokens in RUN lines end up there, and ``docker inspect`` shows them to anyone.

Each entry names the build step that produced it when history tells. History is read once into
``BuildSteps`` (which step last set each name, which step last set Cmd, …), so attributing a
million Env entries costs a million lookups, not a million regexes over every step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from secretscan.image.model import ImageConfig
from secretscan.models import HistoryStep


@dataclass(frozen=True, slots=True)
class ConfigText:
    field: str
    """``config.Env[2]``, ``config.Labels["k"]``, ``manifest.annotations["k"]``, ``history[5].created_by``."""
    text: str
    created_by: str | None
    """The build step that produced the entry, when history tells."""
    step: HistoryStep | None = None
    """For ``history[N].created_by``: that step and the layer it created."""


def config_texts(config: ImageConfig, annotations: dict[str, str]) -> Iterator[ConfigText]:
    cfg = config.container_config
    steps = BuildSteps.read(config)
    for i, env in enumerate(_strings(cfg.get("Env"))):
        name = env.split("=", 1)[0]
        yield ConfigText(f"config.Env[{i}]", env, steps.variables.get(name))
    labels = cfg.get("Labels")
    if isinstance(labels, dict):
        for key, value in labels.items():
            yield ConfigText(f"config.Labels[{json.dumps(str(key))}]", f"{key}={value}", steps.labels.get(str(key)))
    for key, value in annotations.items():
        yield ConfigText(f"manifest.annotations[{json.dumps(key)}]", f"{key}={value}", None)
    for name in ("Cmd", "Entrypoint"):
        parts = _strings(cfg.get(name))
        if parts:
            yield ConfigText(f"config.{name}", " ".join(parts), steps.last.get(name.upper()))
    health = cfg.get("Healthcheck")
    if isinstance(health, dict) and _strings(health.get("Test")):
        yield ConfigText("config.Healthcheck", " ".join(_strings(health.get("Test"))), steps.last.get("HEALTHCHECK"))
    for i, trigger in enumerate(_strings(cfg.get("OnBuild"))):
        yield ConfigText(f"config.OnBuild[{i}]", trigger, steps.last.get("ONBUILD"))
    if isinstance(cfg.get("User"), str) and cfg["User"]:
        yield ConfigText("config.User", cfg["User"], steps.last.get("USER"))
    for entry in config.history:
        if entry.created_by:
            yield ConfigText(
                f"history[{entry.index}].created_by", entry.created_by, entry.created_by, config.history_step(entry)
            )


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, (str, int, float))]
    return []


_SETS_NAMES = ("ENV", "ARG", "LABEL")
_ATTRIBUTED = {*_SETS_NAMES, "CMD", "ENTRYPOINT", "HEALTHCHECK", "ONBUILD", "USER"}
_INSTRUCTION = re.compile(r"([A-Z]+)\b\s*")
_AFTER_NOP = re.compile(r"\s+([A-Z]+)\b\s*")
_NOP = "#(nop)"
_WORD = re.compile(r"""(?:"(?:[^"\\]|\\.)*+"?|'[^']*+'?|[^\s"']++)++""", re.S)
"""One shell-like word: unquoted runs and quoted strings, glued (``A="x y"`` is one word)."""


@dataclass
class BuildSteps:
    """Which history step last set what: later steps win, as in the Dockerfile."""

    variables: dict[str, str] = field(default_factory=dict)
    """Env or build-arg name -> the last ENV or ARG step that sets it."""
    labels: dict[str, str] = field(default_factory=dict)
    """Label key -> the last LABEL step that sets it."""
    last: dict[str, str] = field(default_factory=dict)
    """Instruction (``CMD``, ``ENTRYPOINT``, ``HEALTHCHECK``, ``ONBUILD``, ``USER``) -> its last step."""

    @classmethod
    def read(cls, config: ImageConfig) -> BuildSteps:
        steps = cls()
        for entry in config.history:
            parsed = instruction(entry.created_by)
            if parsed is None:
                continue
            keyword, rest = parsed
            steps.last[keyword] = entry.created_by
            if keyword in ("ENV", "ARG"):
                for name in names_set(keyword, rest):
                    steps.variables[name] = entry.created_by
            elif keyword == "LABEL":
                for name in names_set(keyword, rest):
                    steps.labels[name] = entry.created_by
        return steps


def instruction(step: str) -> tuple[str, str] | None:
    """(``ENV``, ``A=1 B=2``) for a step that the attributed instructions wrote, else None.

    The instruction starts the step (BuildKit: ``ENV A=1``) or follows the classic builder's
    ``/bin/sh -c #(nop)`` marker, so ``HEALTHCHECK CMD …`` is a HEALTHCHECK step, not a CMD one.
    """
    m = _INSTRUCTION.match(step)
    if m is None or m.group(1) not in _ATTRIBUTED:
        at = step.find(_NOP)
        if at < 0:
            return None
        m = _AFTER_NOP.match(step, at + len(_NOP))
        if m is None or m.group(1) not in _ATTRIBUTED:
            return None
    return m.group(1), step[m.end() :]


def names_set(keyword: str, rest: str) -> list[str]:
    """The names an ENV, ARG or LABEL step sets: every ``NAME=value`` word (``ENV A=1 B=2``), the
    one name of the legacy ``ENV NAME value`` form, every word of ``ARG A B=1``; quotes around a
    name (``LABEL "com.example.key"=x``) are dropped."""
    names = []
    for i, m in enumerate(_WORD.finditer(rest)):
        word = m.group()
        name, eq, _ = word.partition("=")
        if not eq and keyword != "ARG":
            if i == 0 and keyword == "ENV":  # ENV NAME value with spaces
                names.append(_unquote(name))
            break
        names.append(_unquote(name))
    return [n for n in names if n]


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text

"""The image config and build history are scanned by default: Env, Labels, manifest annotations,
Cmd, Entrypoint, Healthcheck, OnBuild, User and every history step (ARG defaults, BuildKit
build-args, inline tokens in RUN lines). `docker inspect` shows all of them to anyone who pulls.

Reports never repeat a secret in full (not in a location's build step either) unless the user
asks with --show-secrets. Every secret is generated at test time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import secretgen as gen
from conftest import CliResult
from imagebuilder import EmptyStep, Entry, ImageSpec, Layer, write_docker_archive, write_oci_layout

GITHUB = "github.personal-access-token"
SLACK = "slack.bot-token"
GITLAB = "gitlab.personal-access-token"
NPM = "npm.access-token"
AWS_KEY_ID = "aws.access-key-id"
GENERIC = "generic.secret-assignment"

Cli = Callable[..., CliResult]


@dataclass(frozen=True)
class Plant:
    secret: str
    rule_id: str
    path: str
    """The config location that must be reported."""
    oci_only: bool = False


def _unquoted_password() -> str:
    """A password that can stand unquoted in a shell word (`&` would end it, as the generic rule knows)."""
    while "&" in (value := gen.password()):
        pass
    return value


def _image() -> tuple[ImageSpec, dict[str, Plant]]:
    s = {
        "env": gen.github_pat(),
        "label": gen.slack_bot_token(),
        "annotation": gen.gitlab_pat(),
        "cmd": gen.github_pat(),
        "entrypoint": gen.npm_token(),
        "healthcheck": gen.aws_access_key_id(),
        "onbuild": gen.github_pat(),
        "user": gen.github_pat(),
        "arg": gen.npm_token(),
        "buildkit": _unquoted_password(),
        "inline": gen.github_pat(),
        "layer": gen.slack_bot_token(),
    }
    steps = [
        Layer([Entry("etc/os-release", b"ID=demo\n")], created_by="ADD rootfs.tar /"),  # history[0]
        EmptyStep("ENV PATH=/usr/local/bin:/usr/bin:/bin"),  # history[1]
        EmptyStep(f"ENV GITHUB_TOKEN={s['env']}"),  # history[2]
        EmptyStep(f"ARG NPM_TOKEN={s['arg']}"),  # history[3]
        Layer(
            [Entry("app/Makefile", b"all:\n\ttrue\n")],
            created_by=f"RUN |2 A=1 TOKEN={s['buildkit']} /bin/sh -c make install",
        ),  # history[4]
        Layer(
            [Entry("src.tgz", b"")],
            created_by=f'RUN curl -fsSL -H "Authorization: Bearer {s["inline"]}" '
            "https://api.github.com/repos/acme/app/tarball -o /src.tgz",
        ),  # history[5]
        Layer(
            [Entry("app/notify.sh", f"#!/bin/sh\ncurl -d 'token={s['layer']}' http://hooks.local\n".encode())],
            created_by=f"RUN printf '#!/bin/sh\\ncurl -d token={s['layer']} http://hooks.local\\n' > /app/notify.sh",
        ),
        EmptyStep("LABEL ci.slack=<from the pipeline>"),  # history[7]
        EmptyStep("USER deploy"),  # history[8]
        EmptyStep('CMD ["/bin/sh", "-c", "start"]'),  # history[9]
    ]
    spec = ImageSpec(
        steps,
        env=["PATH=/usr/local/bin:/usr/bin:/bin", f"GITHUB_TOKEN={s['env']}", "LANG=C.UTF-8"],
        labels={"org.opencontainers.image.title": "demo", "ci.slack": s["label"]},
        annotations={"org.opencontainers.image.version": "1.0", "com.example.deploy-token": s["annotation"]},
        cmd=["/bin/sh", "-c", f"curl -H 'Authorization: token {s['cmd']}' https://api.github.com/user && start"],
        entrypoint=["/usr/bin/env", f"NPM_TOKEN={s['entrypoint']}", "node", "server.js"],
        healthcheck={
            "Test": ["CMD-SHELL", f"curl -fsS -H 'X-Key-Id: {s['healthcheck']}' http://localhost/health"],
            "Interval": 30_000_000_000,
        },
        onbuild=["RUN echo building", f"RUN git clone https://x-access-token:{s['onbuild']}@github.com/acme/lib.git"],
        user=s["user"],
    )
    plants = {
        "env": Plant(s["env"], GITHUB, "config.Env[1]"),
        "label": Plant(s["label"], SLACK, 'config.Labels["ci.slack"]'),
        "annotation": Plant(s["annotation"], GITLAB, 'manifest.annotations["com.example.deploy-token"]', oci_only=True),
        "cmd": Plant(s["cmd"], GITHUB, "config.Cmd"),
        "entrypoint": Plant(s["entrypoint"], NPM, "config.Entrypoint"),
        "healthcheck": Plant(s["healthcheck"], AWS_KEY_ID, "config.Healthcheck"),
        "onbuild": Plant(s["onbuild"], GITHUB, "config.OnBuild[1]"),
        "user": Plant(s["user"], GITHUB, "config.User"),
        "arg": Plant(s["arg"], NPM, "history[3].created_by"),
        "buildkit": Plant(s["buildkit"], GENERIC, "history[4].created_by"),
        "inline": Plant(s["inline"], GITHUB, "history[5].created_by"),
        "layer": Plant(s["layer"], SLACK, "history[6].created_by"),
    }
    return spec, plants


def _write(tmp_path: Path, spec: ImageSpec, fmt: str) -> Path:
    if fmt == "oci":
        write_oci_layout(tmp_path / "layout", spec, ref_names=["1.0"])
        return tmp_path / "layout"
    write_docker_archive(tmp_path / "image.tar", spec)
    return tmp_path / "image.tar"


def _by_secret(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for f in report["findings"]:
        assert f["secret"] not in out
        out[f["secret"]] = f
    return out


@pytest.mark.parametrize("fmt", ["oci", "docker-archive"])
def test_config_and_history_fields_are_scanned(cli: Cli, tmp_path: Path, fmt: str) -> None:
    spec, plants = _image()
    image = _write(tmp_path, spec, fmt)
    result = cli("scan", image, "--format", "json", "--quiet", "--show-secrets")
    assert result.code == 1, result.err
    report = result.report
    assert report["errors"] == [] and report["skipped"] == []
    found = _by_secret(report)
    for name, plant in plants.items():
        if plant.oci_only and fmt != "oci":
            assert plant.secret not in found, name
            continue
        assert plant.secret in found, f"{name}: not reported"
        f = found[plant.secret]
        assert f["rule_id"] == plant.rule_id, name
        config_locs = [loc for loc in f["locations"] if loc["layer_index"] is None]
        assert plant.path in [loc["path"] for loc in config_locs], (name, f["locations"])
        for loc in config_locs:
            assert loc["exposure"] == "config", name
            assert loc["layer_digest"] is None and loc["line"] is None
        if name != "layer":
            assert f["exposure"] == "config", name
            assert len(config_locs) == len(f["locations"]), name

    # the ENV value is also in the ENV step of the history: one finding, both places
    env = found[plants["env"].secret]
    assert sorted(loc["path"] for loc in env["locations"]) == ["config.Env[1]", "history[2].created_by"]
    # the file the step wrote is a layer location of the same finding, added by that (masked) step
    layer = found[plants["layer"].secret]
    [in_layer] = [loc for loc in layer["locations"] if loc["layer_index"] is not None]
    where = (in_layer["layer_index"], in_layer["path"], in_layer["line"], in_layer["exposure"])
    assert where == (3, "/app/notify.sh", 2, "final")
    assert in_layer["created_by"].startswith("RUN printf ")
    assert len(report["findings"]) == len([p for p in plants.values() if fmt == "oci" or not p.oci_only])


def test_created_by_is_masked_in_every_location(cli: Cli, tmp_path: Path) -> None:
    spec, plants = _image()
    report = cli("scan", _write(tmp_path, spec, "oci"), "--format", "json", "--quiet").report
    secrets = [p.secret for p in plants.values()]
    steps = [loc["created_by"] for f in report["findings"] for loc in f["locations"] if loc["created_by"]]
    assert len(steps) >= 7  # the history locations, the ENV/ARG-derived ones and the layer file
    for step in steps:
        for secret in secrets:
            assert secret not in step
    by_path = {loc["path"]: loc for f in report["findings"] for loc in f["locations"]}
    assert by_path["config.Env[1]"]["created_by"].startswith("ENV GITHUB_TOKEN=")
    assert by_path["history[5].created_by"]["created_by"].startswith('RUN curl -fsSL -H "Authorization: Bearer ')
    assert by_path["history[5].created_by"]["created_by"].endswith("/tarball -o /src.tgz")


@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_no_report_contains_a_full_secret_without_show_secrets(cli: Cli, tmp_path: Path, fmt: str) -> None:
    spec, plants = _image()
    result = cli("scan", _write(tmp_path, spec, "oci"), "--format", fmt)
    assert result.code == 1, result.err
    everything = result.out + result.err
    assert "Traceback" not in everything
    for name, plant in plants.items():
        assert plant.secret not in everything, f"{name} leaked in the {fmt} report"
    if fmt == "json":
        report = json.loads(result.out)
        assert all("secret" not in f for f in report["findings"])
        assert len(report["findings"]) == len(plants)
    if fmt == "text":
        assert "config.Env[1]" in result.out and "history[4].created_by" in result.out


def test_show_secrets_gives_the_planted_values(cli: Cli, tmp_path: Path) -> None:
    spec, plants = _image()
    report = cli("scan", _write(tmp_path, spec, "oci"), "--format", "json", "--quiet", "--show-secrets").report
    by_path = {loc["path"]: f for f in report["findings"] for loc in f["locations"]}
    for name, plant in plants.items():
        assert by_path[plant.path]["secret"] == plant.secret, name


@pytest.mark.parametrize(
    "step",
    [
        "ENV REGION=eu GITHUB_TOKEN={secret} MODE=prod",  # BuildKit: several names in one step
        "/bin/sh -c #(nop)  ENV REGION=eu GITHUB_TOKEN={secret}",  # classic builder
        "ENV GITHUB_TOKEN {secret}",  # the legacy one-name form
        'ENV REGION="eu west" GITHUB_TOKEN={secret}',  # a quoted value before it
    ],
    ids=["buildkit-second-name", "classic-second-name", "legacy-form", "after-quoted-value"],
)
def test_env_entry_names_the_step_that_set_it(cli: Cli, tmp_path: Path, step: str) -> None:
    secret = gen.github_pat()
    text = step.format(secret=secret)
    spec = ImageSpec(
        [
            Layer([Entry("etc/os-release", b"ID=demo\n")], created_by="ADD rootfs.tar /"),
            EmptyStep("ENV GITHUB_TOKEN=overridden-later"),
            EmptyStep(text),
            EmptyStep("ENV OTHER_TOKEN=x REGION=us"),  # sets other names: not the step of GITHUB_TOKEN
        ],
        env=["REGION=us", f"GITHUB_TOKEN={secret}"],
    )
    report = cli("scan", _write(tmp_path, spec, "oci"), "--format", "json", "--quiet").report
    [env] = [loc for f in report["findings"] for loc in f["locations"] if loc["path"] == "config.Env[1]"]
    before, after = text.split(secret)
    shown = env["created_by"]
    assert shown.startswith(before + "<" + secret[:4]) and shown.endswith(">" + after) and secret not in shown


@pytest.mark.parametrize(
    "step", ['LABEL "ci.slack"="{secret}" team=core', "/bin/sh -c #(nop)  LABEL team=core ci.slack={secret}"]
)
def test_label_names_the_step_that_set_it(cli: Cli, tmp_path: Path, step: str) -> None:
    secret = gen.slack_bot_token()
    text = step.format(secret=secret)
    spec = ImageSpec(
        [Layer([Entry("etc/os-release", b"ID=demo\n")], created_by="ADD rootfs.tar /"), EmptyStep(text)],
        labels={"ci.slack": secret},
    )
    report = cli("scan", _write(tmp_path, spec, "oci"), "--format", "json", "--quiet").report
    [label] = [loc for f in report["findings"] for loc in f["locations"] if loc["path"] == 'config.Labels["ci.slack"]']
    assert label["created_by"] is not None and label["created_by"].startswith(text.split(secret)[0])

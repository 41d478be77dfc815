"""Registry sweeps against a real docker-registry: each unique layer fetched and scanned once, the
second sweep served from the database, resume after a killed sweep, failed images listed, the
Dask path equal to the local one, ECR enumeration through boto3 (moto), and ``where``/``report``
answering from the database alone."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import secretgen
import servers
from conftest import IN_CI, REPO, CliResult, fingerprint_of, gitlab_report_errors, sarif_errors
from imagebuilder import EmptyStep, Entry, ImageSpec, Layer, write_oci_layout
from registry_push import Pusher

pytestmark = pytest.mark.servers


fp = fingerprint_of


@dataclass
class Fleet:
    """A registry holding 3 repositories whose 5 images share a base layer."""

    host: str
    root: Path
    log_path: Path
    secrets: dict[str, str]
    digests: dict[str, str]
    """``repo:tag`` -> manifest digest."""
    pusher: Pusher


def _layer(path: str, text: str, step: str) -> Layer:
    return Layer([Entry(path, text.encode())], f"/bin/sh -c #(nop) COPY file:{step} in /")


def build_fleet(pusher: Pusher, seed: int) -> tuple[dict[str, str], dict[str, str]]:
    s = {
        "aws_id": secretgen.aws_access_key_id(seed),
        "aws_secret": secretgen.aws_secret_access_key(seed),
        "github": secretgen.github_pat(seed),
        "npm": secretgen.npm_token(seed),
        "slack": secretgen.slack_bot_token(seed),
        "stripe": secretgen.stripe_live_secret(seed),
    }
    base = _layer("etc/base.env", f"AWS_ACCESS_KEY_ID={s['aws_id']}\nAWS_SECRET_ACCESS_KEY={s['aws_secret']}\n", "base")
    a1 = _layer("app/config.yml", f"github:\n  token: {s['github']}\n", "a1")
    a2 = _layer("app/.npmrc", f"//registry.npmjs.org/:_authToken={s['npm']}\n", "a2")
    b1 = _layer("srv/notify.py", f'SLACK = "{s["slack"]}"\n', "b1")
    c1 = Layer([Entry("etc/base.env", kind="whiteout")], "/bin/sh -c rm /etc/base.env")
    d: dict[str, str] = {}
    d["team-a/api:v1"] = pusher.image("team-a/api", "v1", ImageSpec([base, a1]), created="2026-01-01T00:00:00Z")
    d["team-a/api:v2"] = pusher.image("team-a/api", "v2", ImageSpec([base, a1, a2]), created="2026-03-01T00:00:00Z")
    d["team-a/api:latest"] = pusher.image(
        "team-a/api", "latest", ImageSpec([base, a1, a2]), created="2026-03-01T00:00:00Z"
    )
    web = ImageSpec([base, EmptyStep("ENV STRIPE_KEY=…"), b1], env=[f"STRIPE_KEY={s['stripe']}"])
    d["team-b/web:1.0"] = pusher.image("team-b/web", "1.0", web, created="2026-02-01T00:00:00Z")
    d["team-c/job:nightly"] = pusher.image(
        "team-c/job", "nightly", ImageSpec([base, c1]), created="2026-02-15T00:00:00Z"
    )
    return s, d


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with servers.registry(tmp_path_factory.mktemp("fleet-registry"), auth="none") as info:
        pusher = Pusher(info.host)
        secrets, digests = build_fleet(pusher, seed=int.from_bytes(os.urandom(4), "big"))
        yield Fleet(info.host, info.root, info.log_path, secrets, digests, pusher)


def sweep(cli: Any, target: str, db: Path, *extra: str) -> tuple[CliResult, dict[str, Any], dict[str, int]]:
    result = cli("sweep", target, "--db", str(db), "-f", "json", *extra)
    assert result.code in (0, 1, 2) and result.out, result.err
    return result, result.report, summary_of(result.err)


def summary_of(stderr: str) -> dict[str, int]:
    """The summary table a user reads at the end of a sweep."""
    images = re.search(r"images\s+(\d+)\s+(\d+) scanned, (\d+) from cache, (\d+) failed", stderr)
    layers = re.search(r"layers\s+(\d+)\s+(\d+) unique: (\d+) scanned, (\d+) from cache, (\d+) failed", stderr)
    assert images and layers, stderr
    keys = ("images", "images_scanned", "images_cached", "images_failed")
    out = dict(zip(keys, map(int, images.groups()), strict=True))
    keys = ("layer_references", "layers_unique", "layers_scanned", "layers_cached", "layers_failed")
    out.update(zip(keys, map(int, layers.groups()), strict=True))
    return out


def by_fingerprint(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["fingerprint"]: f for f in report["findings"]}


def images_of(finding: dict[str, Any]) -> set[str]:
    return {loc["image"] for loc in finding["locations"]}


def blob_gets(log_path: Path, since: int = 0) -> list[str]:
    """Blob downloads the registry served, from its own access log."""
    lines = log_path.read_text(errors="replace").splitlines()[since:]
    return re.findall(r'"GET /v2/[^ ]+/blobs/(sha256:[0-9a-f]{64}) HTTP', "\n".join(lines))


def log_length(log_path: Path) -> int:
    return len(log_path.read_text(errors="replace").splitlines())


def layer_digest(fleet: Fleet, ref: str, index: int) -> str:
    repo, tag = ref.split(":")
    return str(json.loads(fleet.pusher.raw_manifest(repo, tag))["layers"][index]["digest"])


def test_first_sweep_scans_each_unique_layer_once_and_reports_every_image(cli, fleet: Fleet, tmp_path: Path) -> None:
    mark = log_length(fleet.log_path)
    result, report, summary = sweep(cli, fleet.host, tmp_path / "s.db", "-j", "2")
    assert result.code == 1  # findings at or above info
    assert summary == {
        "images": 4,  # v2 and latest are one manifest
        "images_scanned": 4,
        "images_cached": 0,
        "images_failed": 0,
        "layer_references": 9,
        "layers_unique": 5,
        "layers_scanned": 5,
        "layers_cached": 0,
        "layers_failed": 0,
    }
    gets = blob_gets(fleet.log_path, mark)
    layer_gets = [d for d in gets if d in {layer_digest(fleet, r, i) for r in fleet.digests for i in range(2)}]
    base = layer_digest(fleet, "team-a/api:v1", 0)
    assert layer_gets.count(base) == 1, "the shared base layer was downloaded more than once"
    found = by_fingerprint(report)
    s, host = fleet.secrets, fleet.host
    assert images_of(found[fp(s["aws_secret"])]) == {
        f"{host}/team-a/api:v1",
        f"{host}/team-a/api:latest",
        f"{host}/team-b/web:1.0",
        f"{host}/team-c/job:nightly",
    }
    assert images_of(found[fp(s["npm"])]) == {f"{host}/team-a/api:latest"}
    assert images_of(found[fp(s["slack"])]) == {f"{host}/team-b/web:1.0"}
    stripe = found[fp(s["stripe"])]["locations"]
    assert [(loc["path"], loc["exposure"]) for loc in stripe] == [("config.Env[0]", "config")]
    # the same image keeps its own layer order and fate: removed by layer 1 of team-c/job only
    aws = {loc["image"]: loc for loc in found[fp(s["aws_secret"])]["locations"]}
    assert aws[f"{host}/team-c/job:nightly"]["exposure"] == "removed"
    assert aws[f"{host}/team-c/job:nightly"]["removed_in_layer"] == 1
    assert aws[f"{host}/team-b/web:1.0"]["exposure"] == "final"
    tags = {(i["name"], i["digest"]) for i in report["images"]}
    assert (f"{host}/team-a/api:latest", fleet.digests["team-a/api:v2"]) in tags
    assert all(secret not in result.out + result.err for secret in s.values())
    db_bytes = (tmp_path / "s.db").read_bytes()
    assert all(secret.encode() not in db_bytes for secret in s.values()), "a plaintext secret reached the database"


def test_sweep_locations_match_a_single_image_scan(cli, fleet: Fleet, tmp_path: Path) -> None:
    _, report, _ = sweep(cli, fleet.host, tmp_path / "s.db", "--repo", "team-c/job")
    scanned = cli("scan", f"docker://{fleet.host}/team-c/job:nightly", "-f", "json", "-q").report
    keys = ("layer_index", "layer_digest", "path", "line", "exposure", "removed_in_layer", "removed_how", "created_by")

    def where(r: dict[str, Any]) -> list[Any]:
        return sorted(
            (f["rule_id"], f["fingerprint"], tuple(tuple(loc[k] for k in keys) for loc in f["locations"]))
            for f in r["findings"]
        )

    assert where(report) == where(scanned) and where(report)


def test_second_sweep_fetches_only_manifests_and_gives_the_same_report(cli, fleet: Fleet, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    cold, first, before = sweep(cli, fleet.host, db)
    mark = log_length(fleet.log_path)
    started = time.monotonic()
    warm, second, summary = sweep(cli, fleet.host, db)
    elapsed = time.monotonic() - started
    # the summary says where each image and layer came from: all scanned, then all from the cache
    assert "4 scanned, 0 from cache, 0 failed" in cold.err and "5 unique: 5 scanned, 0 from cache, 0 failed" in cold.err
    assert before["layers_scanned"] == before["layers_unique"] == 5
    assert "0 scanned, 4 from cache, 0 failed" in warm.err and "5 unique: 0 scanned, 5 from cache, 0 failed" in warm.err
    assert summary["images_cached"] == 4 and summary["images_scanned"] == 0
    assert summary["layers_scanned"] == 0 and summary["layers_cached"] == summary["layers_unique"] == 5
    assert blob_gets(fleet.log_path, mark) == [], "a cached sweep downloaded blobs"
    assert elapsed < 60  # manifests only: seconds, even on a loaded machine
    assert first["findings"] == second["findings"]


def test_new_tag_scans_only_its_new_layer_and_since_last_shows_only_it(cli, tmp_path: Path) -> None:
    with servers.registry(tmp_path, auth="none") as info:
        pusher = Pusher(info.host)
        secrets, _ = build_fleet(pusher, seed=int.from_bytes(os.urandom(4), "big"))
        db = tmp_path / "s.db"
        sweep(cli, info.host, db)
        fresh = secretgen.gitlab_pat(int.from_bytes(os.urandom(4), "big"))
        base = _layer(
            "etc/base.env",
            f"AWS_ACCESS_KEY_ID={secrets['aws_id']}\nAWS_SECRET_ACCESS_KEY={secrets['aws_secret']}\n",
            "base",
        )
        pusher.image("team-d/new", "1", ImageSpec([base, _layer("opt/ci.env", f"GITLAB_TOKEN={fresh}\n", "d1")]))
        _, report, summary = sweep(cli, info.host, db)
        # the new layer scanned; the shared base from the layer cache, the other 4 with their cached images
        assert summary["layers_unique"] == 6 and summary["layers_scanned"] == 1 and summary["layers_cached"] == 5
        assert summary["images_scanned"] == 1 and summary["images_cached"] == 4
        assert fp(fresh) in by_fingerprint(report)
        new = cli("report", "--db", str(db), "--since-last", "-f", "json")
        assert new.code == 1, new.err
        found = by_fingerprint(new.report)
        # new: the gitlab token, and the old AWS pair only where it newly ships (the new image)
        assert fp(fresh) in found and fp(secrets["slack"]) not in found
        assert images_of(found[fp(secrets["aws_secret"])]) == {f"{info.host}/team-d/new:1"}
        again = cli("sweep", info.host, "--db", str(db), "-q", "-f", "json")
        assert again.code == 1
        nothing_new = cli("report", "--db", str(db), "--since-last", "-f", "json")
        assert nothing_new.code == 0 and nothing_new.report["findings"] == []


def test_where_answers_from_the_database(cli, fleet: Fleet, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    _, report, _ = sweep(cli, fleet.host, db)
    sweep(cli, fleet.host, db)  # answers come from the latest sweep, here a fully cached one
    secret = cli("where", fp(fleet.secrets["aws_secret"]), "--db", str(db), "-f", "json")
    assert secret.code == 0, secret.err
    shipped = {(i["repository"], tuple(i["tags"])) for i in secret.report["images"]}
    assert shipped == {
        ("team-a/api", ("v1",)),
        ("team-a/api", ("latest", "v2")),
        ("team-b/web", ("1.0",)),
        ("team-c/job", ("nightly",)),
    }
    assert all(i["where"] == [f"/etc/base.env ({i['where'][0].split('(')[1]}"] for i in secret.report["images"])
    base = layer_digest(fleet, "team-a/api:v1", 0)
    layer = cli("where", base, "--db", str(db), "-f", "json")
    assert layer.code == 0
    assert len(layer.report["images"]) == 4 and all(i["where"] == ["layer 0"] for i in layer.report["images"])
    held = {s["fingerprint"] for s in layer.report["layer_secrets"]}
    assert {fp(fleet.secrets["aws_id"]), fp(fleet.secrets["aws_secret"])} <= held
    diff_id = by_fingerprint(report)[fp(fleet.secrets["aws_secret"])]["locations"][0]["layer_digest"]
    assert diff_id != base
    by_diff_id = cli("where", diff_id, "--db", str(db), "-f", "json")
    assert by_diff_id.report["images"] == layer.report["images"]
    assert all(i["sweep"] == 2 for i in layer.report["images"])
    text = cli("where", fp(fleet.secrets["npm"]), "--db", str(db))
    assert "team-a/api@" in text.out and "latest, v2" in text.out and "/app/.npmrc" in text.out
    unknown = cli("where", "ssf1:" + "0" * 32, "--db", str(db))
    assert unknown.code == 1 and "not shipped by any image" in unknown.out
    bad = cli("where", "hunter2", "--db", str(db))
    assert bad.code == 2 and "expected a fingerprint" in bad.err


def test_failed_image_is_listed_and_the_others_are_kept(cli, fleet: Fleet, tmp_path: Path) -> None:
    npm_layer = layer_digest(fleet, "team-a/api:v2", 2)
    with servers.flaky_proxy(fleet.host, fail_first=0, tamper_blob=npm_layer) as proxy:
        result, report, summary = sweep(
            cli, proxy.host, tmp_path / "s.db", "--repo", "team-a/api", "--repo", "team-b/web"
        )
    assert result.code == 2
    assert summary["images_failed"] == 1 and summary["images_scanned"] == 2 and summary["layers_failed"] == 1
    assert any("team-a/api:latest" in e and "does not match its digest" in e for e in report["errors"]), report[
        "errors"
    ]
    found = by_fingerprint(report)
    assert fp(fleet.secrets["slack"]) in found and fp(fleet.secrets["github"]) in found
    # the tampered layer was not cached: the next sweep retries it (and succeeds without the proxy's damage)
    _, _, again = sweep(cli, fleet.host, tmp_path / "s.db", "--repo", "team-a/api", "--repo", "team-b/web")
    assert again["layers_scanned"] == 1 and again["images_failed"] == 0
    missing = cli("sweep", fleet.host, "--db", str(tmp_path / "s.db"), "--repo", "no/such", "-f", "json")
    assert missing.code == 2 and any("no/such" in e for e in missing.report["errors"])


def test_killed_sweep_resumes_without_redoing_finished_layers(fleet: Fleet, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with servers.flaky_proxy(fleet.host, fail_first=0, blob_delay=0.7) as proxy:
        argv = [
            sys.executable,
            "-c",
            "import sys; from secretscan.cli import main; sys.exit(main())",
            "sweep",
            proxy.host,
            "--db",
            str(db),
            "-j",
            "1",
            "-q",
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        done = 0
        while time.monotonic() < deadline and child.poll() is None:
            done = _cached_layers(db)
            if done >= 2:
                break
            time.sleep(0.05)
        assert child.poll() is None, "the sweep finished before it could be interrupted"
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert 2 <= done < 5
    before = _cached_layers(db)
    from secretscan.cli import main

    partial = tmp_path / "partial.json"  # the killed sweep's report says it is incomplete
    assert main(["report", "--db", str(db), "-f", "json", "-o", str(partial), "--fail-on-incomplete"]) == 3
    assert any("did not finish" in s["reason"] for s in json.loads(partial.read_text())["skipped"])

    out = tmp_path / "r.json"
    code = main(["sweep", fleet.host, "--db", str(db), "-f", "json", "-o", str(out), "-q"])
    assert code == 1
    rows = sqlite3.connect(db).execute("SELECT summary FROM sweeps WHERE status='finished'").fetchall()
    summary = json.loads(rows[-1][0])
    assert summary["layers_cached"] == before and summary["layers_scanned"] == 5 - before
    assert len(by_fingerprint(json.loads(out.read_text()))) == len(fleet.secrets)


def _cached_layers(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM layer_cache").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_rule_pack_change_invalidates_the_layer_cache(cli, fleet: Fleet, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    sweep(cli, fleet.host, db, "--repo", "team-b/web")
    rules = tmp_path / "rules"
    rules.mkdir()
    rule = {
        "id": "test.notify-module",
        "name": "Slack token in a notify module",
        "pattern": 'SLACK = "(xox[a-z]-[0-9A-Za-z-]{20,})"',
        "keywords": ["SLACK"],
        "severity": "low",
        "examples": [f'SLACK = "{secretgen.slack_bot_token(7)}"'],
        "negative_examples": ['SLACK = "none"'],
    }
    (rules / "extra.yaml").write_text(json.dumps({"rules": [rule]}))  # JSON is YAML
    _, _, changed = sweep(cli, fleet.host, db, "--repo", "team-b/web", "--rules", str(rules))
    assert changed["layers_cached"] == 0 and changed["layers_scanned"] == 2 and changed["images_cached"] == 0
    _, _, same = sweep(cli, fleet.host, db, "--repo", "team-b/web", "--rules", str(rules))
    assert same["layers_scanned"] == 0 and same["images_cached"] == 1


def test_tag_filters(cli, fleet: Fleet, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    _, report, _ = sweep(cli, fleet.host, db, "--repo", "team-a/api", "--tag", "v*")
    assert {i["name"].rsplit(":", 1)[1] for i in report["images"]} == {"v1", "v2"}
    _, report, _ = sweep(cli, fleet.host, db, "--repo", "team-a/api", "--tag-regex", "^lat")
    assert {i["name"].rsplit(":", 1)[1] for i in report["images"]} == {"latest"}
    _, report, _ = sweep(cli, fleet.host, db, "--newest", "1")
    assert {i["name"] for i in report["images"]} == {
        f"{fleet.host}/team-a/api:latest",  # created 2026-03-01 (also tagged v2)
        f"{fleet.host}/team-b/web:1.0",
        f"{fleet.host}/team-c/job:nightly",
    }
    _, report, _ = sweep(cli, fleet.host, db, "--since", "2026-02-10")
    assert {i["name"].split("/", 1)[1] for i in report["images"]} == {"team-a/api:latest", "team-c/job:nightly"}
    repos = tmp_path / "repos.txt"
    repos.write_text("# the web team\nteam-b/web\n\n")
    _, report, _ = sweep(cli, fleet.host, db, "--repos-file", str(repos))
    assert [i["name"] for i in report["images"]] == [f"{fleet.host}/team-b/web:1.0"]


def test_catalog_is_read_through_link_pagination(fleet: Fleet) -> None:
    from secretscan.sources.auth import default_keychain
    from secretscan.sources.reference import ImageRef
    from secretscan.sources.registry import RegistryClient, RegistryOptions

    client = RegistryClient(ImageRef(fleet.host, "catalog"), default_keychain(environ={}), RegistryOptions())
    assert client.listing("/v2/_catalog", "repositories", page_size=1).items == ("team-a/api", "team-b/web", "team-c/job")
    assert client.listing("/v2/team-a/api/tags/list", "tags", page_size=2).items == ("latest", "v1", "v2")


def test_dask_cluster_gives_the_same_results_as_local_workers(cli, fleet: Fleet, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed", reason="dask[distributed] is a test dependency")
    _, local, local_summary = sweep(cli, fleet.host, tmp_path / "local.db")
    try:
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
        )
    except Exception as exc:  # noqa: BLE001
        if IN_CI:
            raise
        pytest.skip(f"a Dask LocalCluster cannot start here: {exc}")
    with cluster:
        _, remote, remote_summary = sweep(cli, fleet.host, tmp_path / "dask.db", "--dask", cluster.scheduler_address)
    assert remote["findings"] == local["findings"] and remote["findings"]
    assert remote_summary == local_summary


def test_ecr_account_is_enumerated_with_boto3(cli, fleet: Fleet, moto_endpoint: str, tmp_path: Path) -> None:
    import boto3

    ecr = boto3.client("ecr", region_name="us-east-1")
    for ref in ("team-a/api:v1", "team-b/web:1.0"):
        repo, tag = ref.split(":")
        ecr.create_repository(repositoryName=repo)
        ecr.put_image(repositoryName=repo, imageManifest=fleet.pusher.raw_manifest(repo, tag).decode(), imageTag=tag)
    _, report, summary = sweep(cli, "ecr:us-east-1", tmp_path / "s.db", "--ecr-registry", fleet.host)
    assert {i["name"] for i in report["images"]} == {f"{fleet.host}/team-a/api:v1", f"{fleet.host}/team-b/web:1.0"}
    assert summary["layers_unique"] == 3  # the base layer is shared
    assert fp(fleet.secrets["slack"]) in by_fingerprint(report)


def test_the_documented_cronjob_runs_a_valid_sweep_command() -> None:
    import yaml

    from secretscan.cli import build_parser

    text = (REPO / "docs" / "sweeps.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    docs = [d for b in blocks for d in yaml.safe_load_all(b)]
    cronjob = next(d for d in docs if d["kind"] == "CronJob")
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    args = build_parser().parse_args(container["args"])
    assert args.command == "sweep" and args.dask and str(args.db).startswith("/data")
    assert not any("password" in a.lower() for a in container["args"]), "credentials never go on the command line"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/data" in mounts and cronjob["spec"]["concurrencyPolicy"] == "Forbid"


def test_multi_platform_index_sweeps_every_platform_or_the_one_asked(cli, tmp_path: Path) -> None:
    token = secretgen.github_pat(int.from_bytes(os.urandom(4), "big"))
    shared = _layer("etc/app.env", f"GH_TOKEN={token}\n", "app")
    specs = [
        ImageSpec([shared, _layer(f"lib/{arch}.so", "binary", arch)], architecture=arch) for arch in ("amd64", "arm64")
    ]
    layout = tmp_path / "layout"
    write_oci_layout(layout, specs, index=True)
    with servers.registry(tmp_path, auth="none") as info:
        servers.push(info, layout, "multi/app:1", all_platforms=True)
        _, both, summary = sweep(cli, info.host, tmp_path / "s.db")
        names = {i["name"] for i in both["images"]}
        assert names == {f"{info.host}/multi/app:1 [linux/amd64]", f"{info.host}/multi/app:1 [linux/arm64]"}
        assert summary["layers_unique"] == 3 and summary["layers_scanned"] == 3  # the shared layer once
        assert images_of(by_fingerprint(both)[fp(token)]) == names
        _, one, _ = sweep(cli, info.host, tmp_path / "one.db", "--platform", "linux/arm64")
        assert [i["name"] for i in one["images"]] == [f"{info.host}/multi/app:1 [linux/arm64]"]
        assert [i["platform"] for i in one["images"]] == ["linux/arm64"]


def test_sweep_report_formats(cli, fleet: Fleet, sarif_multitool: str, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    sweep(cli, fleet.host, db)
    out = tmp_path / "sweep.sarif"
    assert cli("report", "--db", str(db), "-f", "sarif", "-o", str(out)).code == 1
    run = json.loads(out.read_text())["runs"][0]
    assert len({r["partialFingerprints"]["secretscanFingerprint/v1"] for r in run["results"]}) == len(fleet.secrets)
    errors = sarif_errors(sarif_multitool, out)
    assert not errors, "\n".join(errors)
    gitlab = cli("report", "--db", str(db), "-f", "gitlab-secret-detection")
    doc = json.loads(gitlab.out)
    assert gitlab.code == 1 and not gitlab_report_errors(doc)
    assert {v["details"]["fingerprint"]["value"] for v in doc["vulnerabilities"]} == {
        fp(s) for s in fleet.secrets.values()
    }
    assert doc["scan"]["start_time"] <= doc["scan"]["end_time"]  # the sweep's own times
    text = cli("report", "--db", str(db))
    assert text.code == 1 and f"{fleet.host}/team-c/job:nightly" in text.out
    assert all(secret not in text.out for secret in fleet.secrets.values())
    passing = cli("report", "--db", str(db), "--fail-on", "none", "-f", "json")
    assert passing.code == 0 and passing.report["tool"]["rules_digest"].startswith("sha256:")
    missing = cli("report", "--db", str(tmp_path / "none.db"))
    assert missing.code == 2 and "no sweep database" in missing.err
    assert cli("report", "--db", str(db), "--sweep", "99").code == 2


def test_sweep_with_token_auth_and_the_catalog(cli, registry_token, monkeypatch, tmp_path: Path) -> None:
    pusher = Pusher(registry_token.host)
    pusher.session.headers["Authorization"] = "Bearer " + registry_token.bearer_token("repository:sweep/auth:push,pull")
    secret = secretgen.gitlab_pat(int.from_bytes(os.urandom(4), "big"))
    pusher.image("sweep/auth", "1", ImageSpec([_layer("opt/ci.env", f"GITLAB_TOKEN={secret}\n", "ci")]))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(registry_token.write_authfile(tmp_path / "auth.json")))
    _, report, summary = sweep(cli, registry_token.host, tmp_path / "s.db", "--repo", "sweep/auth")
    assert summary["images_scanned"] == 1 and fp(secret) in by_fingerprint(report)
    _, everything, _ = sweep(cli, registry_token.host, tmp_path / "all.db")  # the catalog needs registry:catalog:*
    assert f"{registry_token.host}/sweep/auth:1" in {i["name"] for i in everything["images"]}
    monkeypatch.delenv("REGISTRY_AUTH_FILE")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "nothing"))
    denied = cli("sweep", registry_token.host, "--db", str(tmp_path / "anon.db"), "-f", "json")
    assert denied.code == 2 and "cannot list repositories" in denied.err
    assert registry_token.password not in denied.out + denied.err


def test_keep_prunes_old_sweeps_and_unused_caches(cli, fleet: Fleet, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "none.yaml").write_text("rules: []\n")  # another rule pack: another scan profile
    sweep(cli, fleet.host, db, "--repo", "team-b/web", "--rules", str(rules))
    sweep(cli, fleet.host, db, "--repo", "team-b/web")
    result, _, _ = sweep(cli, fleet.host, db, "--repo", "team-b/web", "--keep", "2")
    assert "removed 1 old sweep" in result.err
    conn = sqlite3.connect(db)
    assert [r[0] for r in conn.execute("SELECT id FROM sweeps ORDER BY id")] == [2, 3]
    assert conn.execute("SELECT count(DISTINCT profile) FROM layer_cache").fetchone()[0] == 1
    assert cli("report", "--db", str(db), "--sweep", "1").code == 2
    assert cli("report", "--db", str(db), "--sweep", "2", "-f", "json").code == 1


def _index_without_its_arm64_manifest(info: servers.RegistryInfo, tmp_path: Path) -> tuple[str, str]:
    """``multi/app:1``, an index of an amd64 and an arm64 image that both hold a token, pushed to
    the registry; then the arm64 manifest is deleted. Returns (the token, the arm64 digest)."""
    token = secretgen.github_pat(int.from_bytes(os.urandom(4), "big"))
    specs = [
        ImageSpec([_layer("etc/app.env", f"GH_TOKEN={token}\n", arch)], architecture=arch) for arch in ("amd64", "arm64")
    ]
    layout = tmp_path / "layout"
    write_oci_layout(layout, specs, index=True)
    servers.push(info, layout, "multi/app:1", all_platforms=True)
    accept = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json"
    index = requests.get(f"http://{info.host}/v2/multi/app/manifests/1", headers={"Accept": accept}, timeout=10)
    [arm] = [m["digest"] for m in index.json()["manifests"] if m["platform"]["architecture"] == "arm64"]
    gone = requests.delete(f"http://{info.host}/v2/multi/app/manifests/{arm}", timeout=10)
    assert gone.status_code == 202, gone.text
    return token, arm


def test_unreadable_platform_of_an_index_costs_only_itself(cli, tmp_path: Path) -> None:
    """An index whose arm64 manifest is gone from the registry: the arm64 image is listed as
    failed, the amd64 one is swept with its findings."""
    with servers.registry(tmp_path, auth="none") as info:
        token, arm = _index_without_its_arm64_manifest(info, tmp_path)
        result, report, summary = sweep(cli, info.host, tmp_path / "s.db")
    assert result.code == 2
    assert summary["images_failed"] == 1 and summary["images_scanned"] == 1
    assert [i["name"] for i in report["images"]] == [f"{info.host}/multi/app:1 [linux/amd64]"]
    assert any(arm in e and "the linux/arm64 image" in e for e in report["errors"]), report["errors"]
    assert images_of(by_fingerprint(report)[fp(token)]) == {f"{info.host}/multi/app:1 [linux/amd64]"}


def test_scan_all_platforms_reads_the_platforms_it_can(cli, tmp_path: Path) -> None:
    """``scan --all-platforms`` resolves an index as the sweep does: the arm64 manifest that is
    gone is an error of its own, and the amd64 image is scanned with its finding."""
    with servers.registry(tmp_path, auth="none") as info:
        token, arm = _index_without_its_arm64_manifest(info, tmp_path)
        result = cli("scan", f"docker://{info.host}/multi/app:1", "--all-platforms", "-f", "json", "-q")
    assert result.code == 2, result.err
    assert [i["platform"] for i in result.report["images"]] == ["linux/amd64"]
    assert any("linux/arm64" in e for e in result.report["errors"]), result.report["errors"]
    assert fp(token) in {f["fingerprint"] for f in result.report["findings"]}


def test_what_was_skipped_is_named_for_each_image_sharing_a_config(cli, tmp_path: Path) -> None:
    """Two repositories hold the same image (one config): the sweep attributes it once, and each
    image's report names what was not opened in it under its own name."""
    from imagebuilder import zip_bytes

    token = secretgen.github_pat(int.from_bytes(os.urandom(4), "big"))
    nested = zip_bytes({"inner.zip": zip_bytes({"deep.txt": f"GH_TOKEN={token}\n".encode()})})
    layout = tmp_path / "layout"
    write_oci_layout(layout, [ImageSpec([Layer([Entry("app/bundle.zip", nested)], "COPY bundle.zip /app/")])])
    with servers.registry(tmp_path, auth="none") as info:
        for repo in ("one/app:1", "two/app:1"):
            servers.push(info, layout, repo)
        first = sweep(cli, info.host, tmp_path / "s.db", "--limit", "max_nested_depth=1")
        again = sweep(cli, info.host, tmp_path / "s.db", "--limit", "max_nested_depth=1")  # from the cache
    assert again[2]["images_cached"] == 2, again[2]
    for _, report, _ in (first, again):
        skipped = [s["what"] for s in report["skipped"] if "nested archive deeper" in s["reason"]]
        assert sorted(skipped) == [
            f"{info.host}/one/app:1 layer 0: /app/bundle.zip!/inner.zip",
            f"{info.host}/two/app:1 layer 0: /app/bundle.zip!/inner.zip",
        ], report["skipped"]


def test_a_sweep_searching_package_content_otherwise_does_not_reuse_the_other_s_layer_results(
    cli, fleet: Fleet, tmp_path: Path
) -> None:
    """What a layer's cached result holds depends on the rules its package content was searched
    with (``search_packages``): a sweep with the other setting scans the layers again."""
    db = tmp_path / "s.db"
    first = sweep(cli, fleet.host, db, "--repo", "team-b/web")[2]
    (tmp_path / "secretscan.yaml").write_text("search_packages: true\n")
    again = sweep(cli, fleet.host, db, "--repo", "team-b/web", "--config", str(tmp_path / "secretscan.yaml"))[2]
    assert first["layers_scanned"] > 0 and again["layers_scanned"] == first["layers_scanned"]
    assert again["layers_cached"] == 0
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(DISTINCT profile) FROM layer_cache").fetchone()[0] == 2
    third = sweep(cli, fleet.host, db, "--repo", "team-b/web")[2]
    assert third["layers_scanned"] == 0 and third["layers_cached"] == first["layers_scanned"]

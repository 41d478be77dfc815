"""``--format html`` rendered in a real headless Chromium: the layer timeline with each build
step, findings on the layer that introduced them and the deleting layer marked, severity counts
and filters that work (the page's script runs under its own Content Security Policy), and image
content that cannot inject markup."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from importlib.metadata import version
from pathlib import Path

import pytest
import secretgen
from conftest import IN_CI, REPO, fingerprint_of
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive
from openbao import Vault
from test_reports import managed_image

from secretscan.models import Exposure

DEMO = REPO / "fixtures" / "demo-image.tar"
EXPECTED = json.loads((REPO / "fixtures" / "demo-expected.json").read_text())


@pytest.fixture(scope="session")
def chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if IN_CI:
            pytest.fail("chromium is not installed (make test installs it with apt)")
        pytest.skip("chromium is not installed: run `make test` as root, which installs it")
    return binary


def render(chromium: str, page: Path, fragment: str = "") -> Node:
    """The DOM after the page's script ran, as Chromium dumps it."""
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000", "--dump-dom",
         page.as_uri() + fragment],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(page.parent)},
    )  # fmt: skip
    assert result.returncode == 0 and "<html" in result.stdout, result.stderr[-2000:]
    return parse(result.stdout)


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    items: list[Node | str] = field(default_factory=list, repr=False)
    """Text and children in document order."""

    def all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        out = []
        for child in self.children:
            if (tag is None or child.tag == tag) and (cls is None or cls in child.attrs.get("class", "").split()):
                out.append(child)
            out.extend(child.all(tag, cls))
        return out

    def content(self) -> str:
        """The text, as a reader sees it in order."""
        return "".join(i if isinstance(i, str) else i.content() for i in self.items)

    def by_id(self, ident: str) -> Node:
        return next(n for n in self.all() if n.attrs.get("id") == ident)


class _Builder(HTMLParser):
    VOID = {"meta", "input", "br", "img", "link", "hr"}

    def __init__(self) -> None:
        super().__init__()
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        self.stack[-1].items.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].text.append(data)
        self.stack[-1].items.append(data)


def parse(text: str) -> Node:
    builder = _Builder()
    builder.feed(text)
    return builder.root


def test_demo_report_renders_the_timeline_and_findings(cli, chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    assert cli("scan", DEMO, "-f", "html", "-o", page, "-q").code == 1
    data = cli("scan", DEMO, "-f", "json", "-q").report
    dom = render(chromium, page)
    body = dom.all("body")[0]
    assert body.attrs.get("data-ready") == "true", "the page script did not run under its CSP"
    image = data["images"][0]
    layers = dom.all("li", "layer")
    assert [int(li.attrs["data-layer"]) for li in layers] == list(range(image["layers"]))
    for li, detail in zip(layers, image["layer_details"], strict=True):
        step = li.all("code", "step")[0].content()
        assert step == (detail["created_by"] or "(build step unknown)")
        assert li.all("code", "diff-id")[0].content() == detail["digest"]
    cards = {c.attrs["data-fingerprint"]: c for c in dom.all("li", "finding")}
    for finding in data["findings"]:
        card = cards[finding["fingerprint"]]
        assert card.attrs["data-severity"] == finding["severity"]
        for loc in finding["locations"]:
            assert any(loc["path"] in p.content() for p in card.all("li", "location")), loc["path"]
            step = loc["history_step"]
            if loc["exposure"] != "config":
                lane = dom.by_id(f"image-0-layer-{loc['layer_index']}")
            elif step and step["layer_index"] is not None:
                lane = dom.by_id(f"image-0-layer-{step['layer_index']}")
            else:
                lane = dom.all("div", "config-lane")[0]
            marks = [m for m in lane.all("li", "mark") if m.attrs["data-finding"] == card.attrs["id"]]
            assert any(loc["path"] in m.content() for m in marks), (finding["rule_id"], loc["path"])
            if loc["exposure"] == "removed":
                assert f"in layer {loc['removed_in_layer']}" in marks[0].content()
                remover = dom.by_id(f"image-0-layer-{loc['removed_in_layer']}")
                assert loc["path"] in " ".join(r.content() for r in remover.all("li", "removal"))
    assert dom.by_id("shown").content() == str(len(data["findings"]))
    for severity in ("critical", "high", "medium", "low", "info"):
        expected = sum(1 for f in data["findings"] if f["severity"] == severity)
        assert dom.by_id(f"count-{severity}").content() == str(expected)
    html = page.read_text()
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html.split("<main>")[0]
    assert not any(n.attrs.get("src") for n in dom.all()), "external assets"
    ids = {n.attrs["id"] for n in dom.all() if "id" in n.attrs}
    links = [n.attrs["href"] for n in dom.all() if "href" in n.attrs]
    assert links and all(h.startswith("#") and h[1:] in ids for h in links), "a link leaves the page"


def _demo_history() -> tuple[list[dict], dict[int, int]]:
    """The demo image's history, and history index -> the layer that step created, read here from
    the archive (non-empty entries create the layers, in order)."""
    with tarfile.open(DEMO) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        config = json.loads(tar.extractfile(manifest[0]["Config"]).read())  # type: ignore[union-attr]
    history = config["history"]
    created = [i for i, h in enumerate(history) if not h.get("empty_layer")]
    assert len(created) == len(config["rootfs"]["diff_ids"])
    return history, {step: layer for layer, step in enumerate(created)}


def test_a_secret_in_a_build_step_is_marked_on_the_layer_that_step_created(cli, chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    cli("scan", DEMO, "-f", "html", "-o", page, "-q")
    dom = render(chromium, page)
    history, layer_of = _demo_history()
    clone = next(i for i, h in enumerate(history) if "git clone" in h["created_by"])
    lane = dom.by_id(f"image-0-layer-{layer_of[clone]}")
    assert "has-findings" in lane.attrs["class"].split()
    marks = [m for m in lane.all("li", "mark") if f"history[{clone}]" in m.content()]
    assert marks, f"layer {layer_of[clone]}, made by the leaking RUN, shows no finding"
    assert "in build step" in marks[0].content() and "GitHub personal access token" in marks[0].content()
    for layer in dom.all("li", "layer"):  # every step's mark sits on the layer that step created
        for mark in layer.all("li", "mark"):
            if mark.attrs["data-lane"] == "step":
                step = int(re.search(r"history\[(\d+)\]", mark.content()).group(1))  # type: ignore[union-attr]
                assert layer_of[step] == int(layer.attrs["data-layer"])
    arg = next(i for i, h in enumerate(history) if h.get("empty_layer") and h["created_by"].startswith("ARG"))
    lane_marks = dom.all("div", "config-lane")[0].all("li", "mark")
    assert any(f"history[{arg}]" in m.content() and "no layer: metadata-only step" in m.content() for m in lane_marks)


def test_one_card_per_secret_and_every_count_agrees(cli, chromium: str, tmp_path: Path) -> None:
    planted = EXPECTED["secrets"]
    page = tmp_path / "report.html"
    cli("scan", DEMO, "-f", "html", "-o", page, "-q")
    dom = render(chromium, page)
    cards = dom.all("li", "finding")
    assert len(cards) == len(planted) == len({c.attrs["data-fingerprint"] for c in cards})
    assert dom.by_id("total").content() == str(len(cards)), "the header counts something else than cards"
    assert dom.by_id("shown").content() == str(len(cards)), "the filter counts something else than cards"
    assert sum(int(b.all("span", "count")[0].content()) for b in dom.all("button", "sev")) == len(cards)
    places = sum(len(p["locations"]) for p in planted)
    assert dom.by_id("places").content() == str(places)
    assert f"{len(cards)} findings ({places} locations)" in dom.all("header")[0].content()
    for plan in planted:
        [card] = [c for c in cards if c.attrs["data-rule"] == plan["rule_id"]]
        assert len(card.all("li", "location")) == len(plan["locations"])
        marks = [m for m in dom.all("li", "mark") if m.attrs["data-finding"] == card.attrs["id"]]
        assert len(marks) == len(plan["locations"]), "each place is drawn once on the timeline"


def test_a_secret_seen_in_several_places_is_one_card(cli, tmp_path: Path) -> None:
    token = secretgen.github_pat()
    spec = ImageSpec(
        [
            Layer([Entry("etc/hostname", b"build\n")], "ADD rootfs.tar /"),
            Layer(
                [Entry("src/README", b"service\n")], f"RUN git clone https://x-access-token:{token}@github.com/o/r /src"
            ),
            Layer([Entry("app/.env", f"GITHUB_TOKEN={token}\n".encode())], "COPY .env /app/.env"),
        ],
        env=[f"GITHUB_TOKEN={token}"],
    )
    image = tmp_path / "img.tar"
    write_docker_archive(image, spec)
    page = tmp_path / "report.html"
    assert cli("scan", image, "-f", "html", "-o", page, "-q").code == 1
    dom = parse(page.read_text())
    cards = [c for c in dom.all("li", "finding") if c.attrs["data-fingerprint"] == fingerprint_of(token)]
    assert len(cards) == 1, "one secret, one card"
    places = [p.content() for p in cards[0].all("li", "location")]
    assert len(places) == 3
    assert any("/app/.env" in p for p in places) and any("config.Env[0]" in p for p in places)
    assert any("history[1].created_by" in p and "[created layer 1, sha256:" in p for p in places)
    marks = [m for m in dom.all("li", "mark") if m.attrs["data-finding"] == cards[0].attrs["id"]]
    assert sorted(m.attrs["data-lane"] for m in marks) == ["config", "file", "step"]
    assert dom.by_id("total").content() == "1" and dom.by_id("shown").content() == "1"
    assert token not in page.read_text()


def test_every_place_says_how_it_is_exposed(cli, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    cli("scan", DEMO, "-f", "html", "-o", page, "-q")
    dom = parse(page.read_text())
    kinds = set()
    for place in dom.all("li", "location"):
        [label] = place.all("span", "exposure")
        kind = place.attrs["data-exposure"]
        assert label.attrs["data-exposure"] == kind and label.content().startswith(f"{kind}: ")
        kinds.add(kind)
    assert kinds == {e.value for e in Exposure}, "the demo has every kind of exposure, each labelled"
    final = [p for plan in EXPECTED["secrets"] for p in plan["locations"] if p["exposure"] == "final"]
    assert final
    for planned in final:
        [place] = [p for p in dom.all("li", "location") if f": {planned['path']}:" in p.content()]
        assert place.all("span", "exposure")[0].content().startswith("final: in the final filesystem")
    switches = {i.attrs["value"] for i in dom.all("input", "exposure")}
    assert switches == {e.value for e in Exposure}


def test_header_says_when_the_scan_ran_and_with_which_secretscan(cli, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    before = datetime.now(UTC).replace(microsecond=0)
    cli("scan", DEMO, "-f", "html", "-o", page, "-q")
    after = datetime.now(UTC)
    header = parse(page.read_text()).all("header")[0]
    stamp = header.by_id("scanned-at")
    when = datetime.fromisoformat(stamp.attrs["datetime"])
    assert stamp.attrs["datetime"].endswith("Z") and when.utcoffset() == timedelta(0)
    assert before <= when <= after
    assert stamp.content() == stamp.attrs["datetime"]
    assert header.by_id("version").content() == version("secretscan")


def test_severity_filter_from_the_url_hides_the_rest(cli, chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    cli("scan", DEMO, "-f", "html", "-o", page, "-q")
    dom = render(chromium, page, "#severity=critical")
    findings = dom.all("li", "finding")
    visible = [f for f in findings if "hidden" not in f.attrs]
    assert visible and all(f.attrs["data-severity"] == "critical" for f in visible)
    assert any(f.attrs["data-severity"] != "critical" for f in findings if "hidden" in f.attrs)
    assert dom.by_id("shown").content() == str(len(visible))
    shown_cards = {f.attrs["id"] for f in visible}
    marks = dom.all("li", "mark")
    assert {m.attrs["data-finding"] for m in marks if "hidden" not in m.attrs} == shown_cards
    pressed = {b.attrs["data-severity"]: b.attrs["aria-pressed"] for b in dom.all("button", "sev")}
    assert pressed["critical"] == "true" and pressed["high"] == "false"
    searched = render(chromium, page, "#q=id_rsa")
    assert [f for f in searched.all("li", "finding") if "hidden" not in f.attrs]
    assert all("id_rsa" in f.content() for f in searched.all("li", "finding") if "hidden" not in f.attrs)


def test_image_content_cannot_inject_markup(cli, chromium: str, tmp_path: Path) -> None:
    token = secretgen.github_pat()
    spec = ImageSpec(
        [
            Layer(
                [Entry('app/<img src=x onerror="document.title=1">.env', f"token: {token}\n".encode())],
                "/bin/sh -c echo '<script>document.title=2</script>'",
            )
        ]
    )
    image = tmp_path / "hostile.tar"
    write_docker_archive(image, spec)
    page = tmp_path / "report.html"
    assert cli("scan", image, "-f", "html", "-o", page, "-q").code == 1
    dom = render(chromium, page)
    assert not dom.all("img"), "a path from the image became markup"
    assert len(dom.all("script")) == 1, "a build step from the image became a script"
    assert "<img src=x" in dom.by_id("image-0-layer-0").content()
    assert "<script>document.title=2</script>" in dom.all("code", "step")[0].content()
    assert dom.all("title")[0].content().startswith("secretscan:")
    assert token not in page.read_text()


def test_screenshot_in_the_docs_is_of_this_report() -> None:
    shot = REPO / "docs" / "html-report.png"
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "html-report.png" in (REPO / "docs" / "reports.md").read_text()


def test_a_card_shows_each_stores_verdict_and_where_the_value_is_held(
    cli, vault: Vault, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    image, tokens, stores = managed_image(tmp_path, vault, monkeypatch)
    page = tmp_path / "report.html"
    assert cli("scan", image, *stores, "-f", "html", "-o", page, "-q").code == 1
    dom = parse(page.read_text())
    cards = {c.attrs["data-fingerprint"]: c for c in dom.all("li", "finding")}
    github, npm = cards[fingerprint_of(tokens["github"])], cards[fingerprint_of(tokens["npm"])]
    assert [s.content() for s in github.all("span", "managed")] == ["vault: current", "aws-secrets: current"]
    assert github.attrs["data-severity"] == "critical"
    notes = [n.content() for n in github.all("div", "managed-note")]
    assert notes[0] == f"Vault: current {vault.mount}/app/github#token version 1 (current 1)"
    assert notes[1].startswith("AWS Secrets Manager: current app/github (AWSCURRENT, version ")
    assert "arn:aws:secretsmanager:us-east-1:" in notes[1]
    assert [s.content() for s in npm.all("span", "managed")] == ["vault: unmanaged", "aws-secrets: former"]
    assert not any(value in page.read_text() for value in tokens.values())

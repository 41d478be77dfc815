"""``--format html`` rendered in a real headless Chromium: the layer timeline with each build
step, findings on the layer that introduced them and the deleting layer marked, severity counts
and filters that work (the page's script runs under its own Content Security Policy), and image
content that cannot inject markup."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
import secretgen
from conftest import IN_CI, REPO
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive

DEMO = REPO / "fixtures" / "demo-image.tar"


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

    def all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        out = []
        for child in self.children:
            if (tag is None or child.tag == tag) and (cls is None or cls in child.attrs.get("class", "").split()):
                out.append(child)
            out.extend(child.all(tag, cls))
        return out

    def content(self) -> str:
        return "".join(self.text) + "".join(c.content() for c in self.children)

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
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].text.append(data)


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
    shown = 0
    for finding in data["findings"]:
        for loc in finding["locations"]:
            shown += 1
            if loc["exposure"] == "config":
                lane = dom.all("div", "config-lane")[0]
                assert finding["redacted"] in lane.content()
                continue
            li = dom.by_id(f"image-0-layer-{loc['layer_index']}")
            entries = [f for f in li.all("li", "finding") if f.attrs["data-rule"] == finding["rule_id"]]
            assert entries and loc["path"] in entries[0].content(), (finding["rule_id"], loc["path"])
            assert entries[0].attrs["data-severity"] == finding["severity"]
            if loc["exposure"] == "removed":
                assert f"in layer {loc['removed_in_layer']}" in entries[0].content()
                remover = dom.by_id(f"image-0-layer-{loc['removed_in_layer']}")
                assert loc["path"] in " ".join(r.content() for r in remover.all("li", "removal"))
    assert dom.by_id("shown").content() == str(shown)
    for severity in ("critical", "high", "medium", "low", "info"):
        expected = sum(1 for f in data["findings"] if f["severity"] == severity)
        assert dom.by_id(f"count-{severity}").content() == str(expected)
    html = page.read_text()
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html.split("<main>")[0]
    assert not any(n.attrs.get("src") or n.attrs.get("href") for n in dom.all()), "external assets"


def test_severity_filter_from_the_url_hides_the_rest(cli, chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    cli("scan", DEMO, "-f", "html", "-o", page, "-q")
    dom = render(chromium, page, "#severity=critical")
    findings = dom.all("li", "finding")
    visible = [f for f in findings if "hidden" not in f.attrs]
    assert visible and all(f.attrs["data-severity"] == "critical" for f in visible)
    assert any(f.attrs["data-severity"] != "critical" for f in findings if "hidden" in f.attrs)
    assert dom.by_id("shown").content() == str(len(visible))
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

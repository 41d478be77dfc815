"""``--format junit`` validates against the Jenkins JUnit schema (junit-10.xsd, installed by
``make test`` from pytest's source distribution) and lists every leak as a failed test case."""

from __future__ import annotations

from pathlib import Path

import secretgen
from conftest import REPO, junit_valid
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive

DEMO = REPO / "fixtures" / "demo-image.tar"


def test_demo_is_valid_junit_with_one_failure_per_location(cli, junit_schema) -> None:
    result = cli("scan", DEMO, "-f", "junit", "-q")
    assert result.code == 1
    doc = junit_valid(junit_schema, result.out)
    data = cli("scan", DEMO, "-f", "json", "-q").report
    places = [(f["rule_id"], loc) for f in data["findings"] for loc in f["locations"]]
    cases = doc.findall(".//testcase")
    assert len(cases) == len(places) == int(doc.get("failures")) == int(doc.get("tests"))
    assert {(c.get("classname"), c.get("name")) for c in cases} == {(r, loc["description"]) for r, loc in places}
    for case in cases:
        failure = case.find("failure")
        assert failure is not None and "fingerprint: ssf1:" in failure.text


def test_clean_image_passes_and_hostile_names_stay_valid_xml(cli, junit_schema, tmp_path: Path) -> None:
    clean = tmp_path / "clean.tar"
    write_docker_archive(clean, ImageSpec([Layer([Entry("app/readme.txt", b"hello\n")])]))
    ok = cli("scan", clean, "-f", "junit", "-q")
    doc = junit_valid(junit_schema, ok.out)
    assert ok.code == 0 and doc.get("failures") == "0" and doc.find(".//testcase").get("name") == "no secrets found"
    token = secretgen.github_pat()
    hostile = tmp_path / "hostile.tar"
    write_docker_archive(hostile, ImageSpec([Layer([Entry("app/\x01bell\x07<&>.env", f"t: {token}\n".encode())])]))
    bad = cli("scan", hostile, "-f", "junit", "-q")
    doc = junit_valid(junit_schema, bad.out)
    assert bad.code == 1 and "\\x01bell\\x07<&>.env" in doc.find(".//testcase").get("name")
    assert token not in bad.out

"""Source maps: each embedded original source is scanned as the file it was, with its own name and
line numbers; the rest of the map is scanned too, and a damaged map as plain bytes."""

from __future__ import annotations

import json
from pathlib import Path

import secretgen
from conftest import fingerprint_of
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive


def _scan(cli, tmp_path: Path, files: dict[str, bytes]):
    image = tmp_path / "map.tar"
    write_docker_archive(image, ImageSpec([Layer([Entry(p, d) for p, d in files.items()])]))
    return cli("scan", image, "-f", "json", "-q", "--fail-on", "none")


def _locations(result, secret: str) -> list[tuple[str, int | None]]:
    for f in result.report["findings"]:
        if f["fingerprint"] == fingerprint_of(secret):
            return [(loc["path"], loc["line"]) for loc in f["locations"]]
    return []


def test_a_secret_in_an_embedded_source_is_reported_at_its_original_file_and_line(cli, tmp_path: Path) -> None:
    token, other = secretgen.github_pat(), secretgen.slack_bot_token()
    source = f'import x from "y";\n\nexport const client = new Client("{token}");\n'
    mapping = {
        "version": 3,
        "file": "main.js",
        "sources": ["webpack://app/./src/config.ts", "webpack://app/./src/other.ts"],
        "sourcesContent": [source, None],
        "names": [],
        "mappings": "AAAA,SAASA;AACA" * 1000,
        "x_extra": f"note {other}",
    }
    result = _scan(cli, tmp_path, {"app/dist/main.js.map": json.dumps(mapping).encode()})
    assert _locations(result, token) == [("/app/dist/main.js.map!/webpack://app/./src/config.ts", 3)]
    assert _locations(result, other) == [("/app/dist/main.js.map", None)]  # the rest of the map is scanned


def test_a_map_that_is_not_json_is_scanned_as_plain_bytes(cli, tmp_path: Path) -> None:
    token = secretgen.github_pat()
    broken = ('{"version": 3, "sourcesContent": ["const t = \\"' + token + '\\";"], ').encode()  # cut short
    result = _scan(cli, tmp_path, {"app/dist/main.js.map": broken, "etc/keymap.map": f"{{ {token}".encode()})
    assert set(_locations(result, token)) == {("/app/dist/main.js.map", 1), ("/etc/keymap.map", 1)}

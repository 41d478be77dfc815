"""Sealing: plaintext becomes fingerprint + redacted form at the detector boundary, and history
lines are masked from fingerprints alone (so cached results mask exactly like fresh ones)."""

from __future__ import annotations

import re

import secretgen

from secretscan.detect.knownkeys import KnownKeys, known_key_fingerprint
from secretscan.detect.match import Match
from secretscan.detect.seal import Sealer
from secretscan.redact import Masker, fingerprint, mask, redact

KEY = b"test-key"


def test_seal_keeps_no_plaintext_and_decides_what_needs_it() -> None:
    token = secretgen.github_pat(1)
    published = secretgen.github_pat(2)
    known = KnownKeys({known_key_fingerprint(published): "vendor docs"})
    sealer = Sealer(KEY, known, (re.compile("^ghp_" + re.escape(token[4:8])),))
    secrets: dict[str, str] = {}
    s = sealer.seal(Match("github.pat", token, 0, len(token), context="x"), secrets)
    p = sealer.seal(Match("github.pat", published, 0, len(published)), secrets)
    assert token not in repr(s) and published not in repr(p)
    assert s.fingerprint == fingerprint(token, KEY) and s.redacted == redact(token) and s.length == len(token)
    assert s.allowlisted_value and not p.allowlisted_value
    assert p.known_source == "vendor docs" and s.known_source is None
    assert secrets == {s.fingerprint: token, p.fingerprint: published}


def test_sealer_identity_changes_with_what_changes_a_sighting() -> None:
    base = Sealer(KEY, KnownKeys({}))
    assert base.identity == Sealer(KEY, KnownKeys({})).identity
    assert base.identity != Sealer(b"other", KnownKeys({})).identity
    assert base.identity != Sealer(KEY, KnownKeys({"sha256:00": "x"})).identity
    assert base.identity != Sealer(KEY, KnownKeys({}), (re.compile("a"),)).identity
    assert KEY.decode() not in base.identity


def test_mask_by_fingerprint_hides_every_occurrence() -> None:
    token = secretgen.github_pat(3)
    short = "pw" + secretgen.password(4)[:6]
    line = f"/bin/sh -c echo {token} > /a && curl -u u:{short} x && echo {token}"
    sighted = {(fingerprint(v, KEY), len(v), redact(v)) for v in (token, short)}
    masked = mask(line, sighted, KEY)
    assert token not in masked and short not in masked
    assert masked.count(f"<{redact(token)}>") == 2 and f"<{redact(short)}>" in masked
    assert masked.startswith("/bin/sh -c echo <") and masked.endswith(">")
    # a different key is a different fingerprint: nothing is masked by accident
    assert mask(line, sighted, b"other") == line


def test_masker_hides_each_of_many_values_in_many_texts() -> None:
    """One image's build steps, each with its own password (every redacted form shows a different
    start), masked with one index of all of them: no step keeps its value, no other text changes."""
    values = [f"Pw{i}x" + secretgen.password(i).replace("&", "9") for i in range(300)]
    sighted = {(fingerprint(v, KEY), len(v), redact(v)) for v in values}
    masker = Masker(sighted, KEY)
    for i, value in enumerate(values):
        step = f"ENV DB{i}_PASSWORD={value} MODE=prod"
        assert masker.mask(step) == f"ENV DB{i}_PASSWORD=<{redact(value)}> MODE=prod"
    untouched = "RUN make install && echo " + "Pw1x" * 50
    assert masker.mask(untouched) == untouched


def test_masker_masks_the_longer_of_two_overlapping_values() -> None:
    token = secretgen.github_pat(5)
    inner = token[4:20]  # a shorter value that is part of the longer one
    sighted = {(fingerprint(v, KEY), len(v), redact(v)) for v in (token, inner)}
    text = f"echo {token} {inner}"
    assert Masker(sighted, KEY).mask(text) == f"echo <{redact(token)}> <{redact(inner)}>"

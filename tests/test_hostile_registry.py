"""What a hostile registry can try, and what it gets: credentials stay with their exact origin,
no clear-text downgrade, no hang (trickles, stalls, endless pages), no oversized read — and the
secrets already streamed are still reported.

Every server here runs on 127.0.0.1 (``hostile_registry``). Where a test needs a host that the
policy must treat as remote, it uses ``127.1``: a name that is not a loopback name, yet reaches
this machine, so a request wrongly sent there is recorded instead of leaving the machine.
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

import pytest
import secretgen
from conftest import fingerprint_of
from hostile_registry import REMOTE_LOOKING, Behaviour, hostile_registry
from imagebuilder import Entry, ImageSpec, Layer

from secretscan.sources.registry import Origin


def _token() -> str:
    return secretgen.github_pat(int.from_bytes(os.urandom(4), "big"))


def _two_layers(a: str, b: str, compression: str = "gzip") -> ImageSpec:
    return ImageSpec(
        [
            Layer([Entry("app/a.env", f"TOKEN={a}\n".encode())], "COPY a.env /app/", compression),
            Layer(
                [Entry("app/b.env", f"TOKEN={b}\n".encode()), Entry("app/blob.bin", os.urandom(48 * 1024))],
                "COPY b.env /app/",
                compression,
            ),
        ]
    )


def _found(report: dict) -> set[str]:
    return {f["fingerprint"] for f in report["findings"]}


def _login(monkeypatch: pytest.MonkeyPatch, behaviour: Behaviour) -> list[str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(behaviour.password + "\n"))
    return ["--username", behaviour.username, "--password-stdin"]


# ----------------------------------------------------------------------------- origins


def test_an_origin_is_scheme_host_and_port_with_default_ports_explicit() -> None:
    assert Origin.of("https://reg.example") == Origin.of("https://REG.example:443/v2/")
    assert Origin.of("https://reg.example") != Origin.of("http://reg.example")
    assert Origin.of("https://reg.example:8443") != Origin.of("https://reg.example")
    assert Origin.of("http://[::1]:5000/x").loopback and not Origin.of(f"http://{REMOTE_LOOKING}:5000").loopback


# ----------------------------------------------------------------------------- redirects


def test_https_registry_redirecting_to_its_own_port_over_http_sends_no_credentials(
    cli, monkeypatch, tmp_path: Path
) -> None:
    """Same host, same port, plain HTTP: a different origin. Loopback may be reached so, but the
    Authorization header stays with https://host:port."""
    a, b = _token(), _token()
    behaviour = Behaviour(auth="basic")
    with hostile_registry(_two_layers(a, b), behaviour, tls_dir=tmp_path) as registry:
        second = registry.layer_digests[1]
        behaviour.redirect_blobs[second] = "http://127.0.0.1:{port}/cdn/" + second
        result = cli("scan", registry.reference, "-f", "json", "-q", *_login(monkeypatch, behaviour))
        assert result.code == 1, result.err
        assert {fingerprint_of(a), fingerprint_of(b)} <= _found(result.report)
        plain = registry.requests(scheme="http")
        assert [s.path for s in plain] == [f"/cdn/{second}"], plain
        assert "authorization" not in plain[0].headers
        assert any("authorization" in s.headers for s in registry.requests(scheme="https", path_contains="/blobs/"))


def test_https_registry_redirecting_to_a_remote_http_host_is_refused(cli, monkeypatch, tmp_path: Path) -> None:
    a, b = _token(), _token()
    behaviour = Behaviour(auth="basic")
    with hostile_registry(_two_layers(a, b), behaviour, tls_dir=tmp_path) as registry:
        second = registry.layer_digests[1]
        behaviour.redirect_blobs[second] = f"http://{REMOTE_LOOKING}:{{port}}/cdn/{second}"
        result = cli("scan", registry.reference, "-f", "json", "-q", *_login(monkeypatch, behaviour))
        assert result.code == 2, result.err
        assert registry.requests(scheme="http") == []  # not even without credentials: no clear text at all
        report = result.report
        assert fingerprint_of(a) in _found(report) and fingerprint_of(b) not in _found(report)
        error = " ".join(report["errors"])
        assert "refusing to follow a redirect from HTTPS to plain HTTP" in error
        assert f"http://{REMOTE_LOOKING}:{registry.port}" in error
        assert behaviour.password not in result.out + result.err


# ----------------------------------------------------------------------------- token services


def test_a_plain_http_token_realm_off_loopback_gets_nothing(cli, monkeypatch) -> None:
    behaviour = Behaviour(auth="bearer", realm=f"http://{REMOTE_LOOKING}:{{port}}/token")
    with hostile_registry(_two_layers(_token(), _token()), behaviour) as registry:
        result = cli("scan", registry.reference, "-f", "json", "-q", *_login(monkeypatch, behaviour))
        lines = result.err.strip().splitlines()
        assert result.code == 2 and len(lines) == 1, result.err
        assert f"http://{REMOTE_LOOKING}:{registry.port}" in lines[0] and "token service" in lines[0]
        assert registry.requests(path_contains="/token") == []
        assert behaviour.password not in result.err


def test_a_loopback_token_realm_beside_a_loopback_registry_works(cli, monkeypatch) -> None:
    a, b = _token(), _token()
    behaviour = Behaviour(auth="bearer", realm="http://127.0.0.1:{port}/token")
    with hostile_registry(_two_layers(a, b), behaviour) as registry:
        result = cli("scan", registry.reference, "-f", "json", "-q", *_login(monkeypatch, behaviour))
        assert result.code == 1, result.err
        assert {fingerprint_of(a), fingerprint_of(b)} <= _found(result.report)
        assert registry.requests(path_contains="/token")[0].headers["authorization"].startswith("Basic ")


def test_credentials_are_not_sent_to_a_remote_plain_http_registry(cli, monkeypatch) -> None:
    """--insecure-registry lets a remote registry be read over plain HTTP, anonymously: the user's
    password never crosses the network in clear text."""
    behaviour = Behaviour(auth="basic")
    with hostile_registry(_two_layers(_token(), _token()), behaviour) as registry:
        remote = f"{REMOTE_LOOKING}:{registry.port}"
        result = cli(
            "scan",
            f"docker://{remote}/hostile/app:1",
            "--insecure-registry",
            remote,
            "-q",
            *_login(monkeypatch, behaviour),
        )
        assert result.code == 2 and "refusing to send them" in result.err, result.err
        assert not any("authorization" in s.headers for s in registry.seen)


# ----------------------------------------------------------------------------- passwords on argv


@pytest.mark.parametrize(
    "argv",
    [
        ["--password", "{pw}"],
        ["--password={pw}"],
        ["--pass", "{pw}"],
        ["-p", "{pw}"],
        ["-p{pw}"],
        ["--passwd", "{pw}"],
    ],
    ids=["password", "password=", "pass", "p", "p-attached", "passwd"],
)
def test_a_password_on_the_command_line_is_refused_and_never_echoed(cli, monkeypatch, argv: list[str]) -> None:
    password = "pw-" + os.urandom(6).hex()
    with hostile_registry(_two_layers(_token(), _token()), Behaviour(auth="basic")) as registry:
        monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
        args = [a.replace("{pw}", password) for a in argv]
        result = cli("scan", "--username", "bob", *args, registry.reference, "-q")
        assert result.code == 2
        assert password not in result.out + result.err
        assert "--password-stdin" in result.err and len(result.err.strip().splitlines()) == 1
        assert registry.seen == []  # nothing was scanned, nothing asked of any registry


def test_no_option_is_taken_by_its_prefix(cli) -> None:
    result = cli("scan", "fixtures-do-not-exist.tar", "--fail-on-inc")
    assert result.code == 2 and "unrecognized arguments" in result.err


# ----------------------------------------------------------------------------- deadlines


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Compile the rule pack once before the timed scans below, so that ``--timeout`` and the
    elapsed-time bounds measure transfers, not a cold start."""
    from imagebuilder import write_docker_archive

    from secretscan.cli import main

    image = tmp_path_factory.mktemp("warm") / "image.tar"
    write_docker_archive(image, ImageSpec([Layer([Entry("a.txt", b"a")])]))
    assert main(["scan", str(image), "-q", "-f", "json", "-o", str(image.with_suffix(".json"))]) == 0


def _timed(cli, *args: str):
    started = time.monotonic()
    result = cli("scan", *args)
    return result, time.monotonic() - started


# Bounds on elapsed time below are loose on purpose (a loaded CI machine): each only tells the
# option under test from the default that would apply without it (a 30 s stall window, no timeout).


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_a_trickled_blob_stalls_and_what_streamed_before_is_reported(cli, warm, compression: str) -> None:
    a, b = _token(), _token()
    behaviour = Behaviour()
    with hostile_registry(_two_layers(a, b, compression), behaviour) as registry:
        # the secret file and the next header go at once, then 1 byte every 0.2 s (a read timeout never fires)
        behaviour.trickle_blobs[registry.layer_digests[1]] = (4096, 0.2, 1)
        result, elapsed = _timed(cli, registry.reference, "-f", "json", "-q", "--stall-timeout", "2s")
    assert result.code == 2, result.err
    assert elapsed < 25, elapsed
    report = result.report
    assert {fingerprint_of(a), fingerprint_of(b)} <= _found(report)
    assert any("stalled" in e and "layer 1" in e for e in report["errors"]), report["errors"]
    assert not report["complete"]


def test_a_large_burst_buys_a_trickle_no_more_than_one_window(cli, warm) -> None:
    """1.5 MiB at once, then a byte every 0.2 s: what counts is the last window of waiting, not the
    average since the start (which the burst would keep above the minimum for hundreds of windows)."""
    a = _token()
    spec = ImageSpec([Layer([Entry("app/a.env", f"TOKEN={a}\n".encode()), Entry("big.bin", os.urandom(2 << 20))])])
    behaviour = Behaviour()
    with hostile_registry(spec, behaviour) as registry:
        behaviour.trickle_blobs[registry.layer_digests[0]] = (3 << 19, 0.2, 1)
        result, elapsed = _timed(cli, registry.reference, "-f", "json", "-q", "--stall-timeout", "2s")
    assert result.code == 2 and fingerprint_of(a) in _found(result.report), result.err
    assert any("stalled" in e for e in result.report["errors"]), result.report["errors"]
    assert elapsed < 25, elapsed


def test_trickled_response_headers_stall_too(cli, warm) -> None:
    behaviour = Behaviour(manifest_header_delay=0.3)
    with hostile_registry(_two_layers(_token(), _token()), behaviour) as registry:
        result, elapsed = _timed(cli, registry.reference, "-q", "--stall-timeout", "2s")
    lines = result.err.strip().splitlines()
    assert result.code == 2 and len(lines) == 1 and "stalled" in lines[0], result.err
    assert elapsed < 25, elapsed


def test_the_overall_timeout_ends_a_slow_but_steady_transfer_with_a_partial_report(cli, warm) -> None:
    a, b = _token(), _token()
    behaviour = Behaviour()
    with hostile_registry(_two_layers(a, b, compression="none"), behaviour) as registry:
        # 2 KiB/s: above the stall minimum, yet ~25 s for this blob
        behaviour.trickle_blobs[registry.layer_digests[1]] = (2048, 0.1, 200)
        result, elapsed = _timed(cli, registry.reference, "-f", "json", "-q", "--timeout", "5s")
    assert result.code == 2, result.err
    assert elapsed < 20, elapsed
    report = result.report
    assert {fingerprint_of(a), fingerprint_of(b)} <= _found(report)
    assert any("--timeout of 5 s ran out" in e for e in report["errors"]), report["errors"]


def test_a_timeout_on_a_local_archive_reports_what_was_not_finished(cli, tmp_path: Path) -> None:
    from imagebuilder import write_docker_archive

    a = _token()
    spec = ImageSpec(
        [Layer([Entry("app/a.env", f"TOKEN={a}\n".encode())])]
        + [Layer([Entry(f"data/{i}.bin", os.urandom(4 * 1024 * 1024))]) for i in range(6)]
    )
    image = tmp_path / "image.tar"
    write_docker_archive(image, spec)
    result = cli("scan", image, "-f", "json", "-q", "-j", "1", "--timeout", "0.01s")
    assert result.code == 2 and result.out, result.err
    errors = result.report["errors"]
    assert errors and all("--timeout of 0.01 s ran out" in e for e in errors), errors


def test_durations_are_checked_before_anything_runs(cli) -> None:
    result = cli("scan", "anything", "--timeout", "soon")
    assert result.code == 2 and "--timeout" in result.err and "duration" in result.err


# ----------------------------------------------------------------------------- sizes


def test_a_blob_longer_than_its_descriptor_stops_at_its_size(cli) -> None:
    a, b = _token(), _token()
    behaviour = Behaviour()
    with hostile_registry(_two_layers(a, b), behaviour) as registry:
        second = registry.layer_digests[1]
        behaviour.overrun_blobs[second] = 256 * 1024 * 1024
        result = cli("scan", registry.reference, "-f", "json", "-q")
        sent = registry.sent.get(second, 0)
    assert result.code == 2, result.err
    report = result.report
    assert {fingerprint_of(a), fingerprint_of(b)} <= _found(report)
    assert any("longer than" in e and "layer 1" in e for e in report["errors"]), report["errors"]
    assert sent < 64 * 1024 * 1024, f"the server got to write {sent} bytes"


def test_a_config_longer_than_its_descriptor_is_refused(cli) -> None:
    behaviour = Behaviour()
    with hostile_registry(_two_layers(_token(), _token()), behaviour) as registry:
        behaviour.overrun_blobs[registry.config_digest] = 64 * 1024 * 1024
        result = cli("scan", registry.reference, "-q")
        sent = registry.sent.get(registry.config_digest, 0)
    lines = result.err.strip().splitlines()
    assert result.code == 2 and len(lines) == 1 and "longer than" in lines[0], result.err
    assert sent < 32 * 1024 * 1024


# ----------------------------------------------------------------------------- pagination


def _sweep(cli, registry, tmp_path: Path, *extra: str):
    return cli("sweep", registry.host, "--db", tmp_path / "sweeps.db", "-f", "json", "-q", "-j", "1", *extra)


def test_a_catalog_of_endless_empty_pages_ends_at_the_first(cli, tmp_path: Path) -> None:
    with hostile_registry(_two_layers(_token(), _token()), Behaviour(catalog="endless-empty")) as registry:
        started = time.monotonic()
        result = _sweep(cli, registry, tmp_path)
        catalog = registry.requests(path_contains="/v2/_catalog")
    assert result.code == 0, result.err
    assert len(catalog) == 1 and time.monotonic() - started < 30


def test_a_catalog_whose_cursor_does_not_advance_is_cut_short_and_says_so(cli, tmp_path: Path) -> None:
    with hostile_registry(_two_layers(_token(), _token()), Behaviour(catalog="stuck-cursor")) as registry:
        result = _sweep(cli, registry, tmp_path)
        catalog = registry.requests(path_contains="/v2/_catalog")
    assert len(catalog) <= 3, len(catalog)
    skipped = [s["reason"] for s in result.report["skipped"]]
    assert any("does not advance" in s for s in skipped), skipped


def test_repositories_per_sweep_are_capped_and_the_cap_is_reported(cli, tmp_path: Path) -> None:
    with hostile_registry(_two_layers(_token(), _token()), Behaviour(catalog="one-per-page")) as registry:
        result = _sweep(cli, registry, tmp_path, "--max-repositories", "12")
        catalog = registry.requests(path_contains="/v2/_catalog")
    assert len(catalog) == 12, len(catalog)
    report = result.report
    assert any("more than 12" in s["reason"] for s in report["skipped"]), report["skipped"]
    assert not report["complete"]


def test_listing_pages_are_capped() -> None:
    from secretscan.sources.auth import MultiKeychain
    from secretscan.sources.reference import ImageRef
    from secretscan.sources.registry import RegistryClient, RegistryOptions

    with hostile_registry(_two_layers(_token(), _token()), Behaviour(catalog="one-per-page")) as registry:
        client = RegistryClient(ImageRef(registry.host, "catalog"), MultiKeychain(()), RegistryOptions())
        listing = client.listing("/v2/_catalog", "repositories", max_pages=5)
        assert len(listing.items) == 5 and listing.incomplete == "stopped after 5 pages"
        assert len(registry.requests(path_contains="/v2/_catalog")) == 5

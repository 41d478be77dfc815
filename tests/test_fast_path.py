"""Speed-ups only make scanning faster: findings are identical without the Hyperscan prefilter
and without worker processes."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import zipfile
from pathlib import Path

import pytest
import secretgen
from conftest import REPO, scan_json
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive


def _mixed_image(tmp_path: Path) -> Path:
    jar = io.BytesIO()
    with zipfile.ZipFile(jar, "w") as z:
        z.writestr("application.yml", f"spring:\n  datasource:\n    password: {secretgen.password()}\n")
    files: dict[str, str | bytes] = {
        "app/.env": f"GITHUB_TOKEN={secretgen.github_pat()}\nDB_PASSWORD={secretgen.password()}\n",
        "app/settings.py": 'import os\nSECRET_KEY = os.environ["SECRET_KEY"]\napi_key = "'
        + secretgen.password()
        + '"\n',
        "app/bundle.min.js": 'var a={token:"' + secretgen.slack_bot_token() + '"};' + "x=1;" * 20000,
        "app/lib/app.jar": jar.getvalue(),
        "root/.ssh/id_ed25519": secretgen.openssh_private_key(),
        "usr/bin/tool": b"\x7fELF" + bytes(5000) + b"key=" + secretgen.aws_secret_access_key().encode() + bytes(100),
        "var/log/app.log": "\n".join(f"2026-11-22 request id={i:08x} token=none user=svc" for i in range(30000)),
    }
    path = tmp_path / "mixed.tar"
    entries = [Entry(p, d if isinstance(d, bytes) else d.encode()) for p, d in files.items()]
    write_docker_archive(path, [ImageSpec(steps=[Layer(entries)], env=[f"NPM_TOKEN={secretgen.npm_token()}"])])
    return path


@pytest.mark.parametrize("image", ["demo", "mixed"])
def test_fast_and_slow_paths_give_identical_findings(cli, tmp_path: Path, image: str) -> None:
    from secretscan.detect.engine import Engine  # noqa: F401 - the fast path needs hyperscan importable

    pytest.importorskip("hyperscan", reason="the Hyperscan fast path is not installed (pip install hyperscan)")
    target = REPO / "fixtures" / "demo-image.tar" if image == "demo" else _mixed_image(tmp_path)
    fast = scan_json(cli, target, "--show-secrets")
    slow = scan_json(cli, target, "--show-secrets", "--no-hyperscan")
    assert fast["findings"] and json.dumps(fast["findings"], sort_keys=True) == json.dumps(
        slow["findings"], sort_keys=True
    )
    assert fast["skipped"] == slow["skipped"]


def test_layers_in_worker_processes_give_the_same_report(cli) -> None:
    demo = REPO / "fixtures" / "demo-image.tar"  # nine layers: spread over two workers
    parallel = scan_json(cli, demo, "--show-secrets", "--jobs", "2")
    sequential = scan_json(cli, demo, "--show-secrets", "--jobs", "1")
    assert parallel == sequential and len(parallel["findings"]) == 10


def test_a_dying_worker_loses_only_its_own_layer() -> None:
    import os

    from secretscan.parallel import fork_map

    def work(i: int) -> str:
        if i == 2:
            os._exit(9)  # a worker killed mid-layer (out of memory, a signal)
        if i == 3:
            raise ValueError("unreadable")
        return f"layer {i} scanned"

    results = fork_map(work, range(6), [1] * 6, 2, on_error=lambda i, why: f"layer {i} failed: {why}")
    assert results[2] == "layer 2 failed: worker process ended abnormally"
    assert results[3].startswith("layer 3 failed: ValueError: unreadable")
    assert [results[i] for i in (0, 1, 4, 5)] == [f"layer {i} scanned" for i in (0, 1, 4, 5)]


def test_a_finished_item_can_add_items_and_a_free_worker_waits_for_them(tmp_path: Path) -> None:
    """A compressed layer is cut only once a worker has decompressed it into memory: the cuts are
    new items, sent (pickled) to workers forked before they existed. A worker done with its own
    waits for them rather than stopping, the added items' results come after the others', and an
    added item that fails is its own."""
    import os
    import time

    from secretscan.parallel import fork_map

    def work(item: tuple[str, int]) -> tuple[str, int, int]:
        kind, n = item
        if kind == "cut" and n == 3:
            raise ValueError("damaged piece")
        time.sleep(0.3 if kind == "inflate" else 0.2 if kind == "cut" else 0)  # the other worker is free first
        return kind, n, os.getpid()

    def done(index: int, result: tuple | str) -> list[tuple[tuple[str, int], int]]:
        if isinstance(result, tuple) and result[0] == "inflate":  # its pieces join the work
            return [(("cut", n), 1) for n in range(1, result[1] + 1)]
        return []

    items = [("inflate", 4), ("layer", 0)]
    results = fork_map(work, items, [9, 1], 2, on_error=lambda i, why: f"item {i} failed: {why}", on_done=done)
    assert [r[:2] for r in results[:2]] == [("inflate", 4), ("layer", 0)]
    assert [r[:2] if isinstance(r, tuple) else r for r in results[2:]] == [
        ("cut", 1), ("cut", 2), "item 4 failed: ValueError: damaged piece", ("cut", 4),
    ]  # fmt: skip
    workers = {r[2] for r in results if isinstance(r, tuple)}
    assert os.getpid() not in workers and len(workers) == 2
    assert len({r[2] for r in results[2:] if isinstance(r, tuple)}) == 2  # the free worker waited for the cuts
    serial = fork_map(lambda item: item, items, [9, 1], 1, on_error=lambda i, why: "", on_done=done)
    assert serial == [*items, ("cut", 1), ("cut", 2), ("cut", 3), ("cut", 4)]  # one worker: in this process


def test_work_meanwhile_runs_beside_the_workers_and_its_failure_stops_them(tmp_path: Path) -> None:
    """The detection stack is built while forked workers survey the layers: it overlaps them, a
    worker done with one layer goes on with the next meanwhile, and should it fail (a bad rule
    file), or the run be interrupted, no worker is left behind."""
    import os
    import time

    from secretscan.parallel import fork_map

    def survey(i: int) -> float:
        (tmp_path / f"started-{i}").touch()
        time.sleep(0.5)
        return time.monotonic()

    def build() -> None:
        deadline = time.monotonic() + 10
        while len(list(tmp_path.glob("started-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        (tmp_path / "built").write_text(str(time.monotonic()))

    ends = fork_map(survey, range(2), [1, 1], 2, on_error=lambda i, why: 0.0, meanwhile=build)
    assert float((tmp_path / "built").read_text()) < min(ends)  # built while both workers worked

    def quick(i: int) -> int:
        (tmp_path / f"quick-{i}").touch()
        return i

    def build_slowly() -> None:  # done only once every item has started: workers are not kept waiting
        deadline = time.monotonic() + 10
        while len(list(tmp_path.glob("quick-*"))) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        (tmp_path / "started when built").write_text(str(len(list(tmp_path.glob("quick-*")))))

    assert fork_map(quick, range(6), [1] * 6, 2, on_error=lambda i, why: -1, meanwhile=build_slowly) == list(range(6))
    assert (tmp_path / "started when built").read_text() == "6"

    def children() -> set[int]:
        return {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _child_of(p, os.getpid())}

    before = children()  # (a test worker may hold servers of its own)
    pids: list[int] = []

    def hang(i: int) -> None:
        time.sleep(60)

    def fail() -> None:
        pids.extend(children() - before)
        raise ValueError("rule bad.yaml#x: pattern does not compile")

    with pytest.raises(ValueError, match="does not compile"):
        fork_map(hang, range(2), [1, 1], 2, on_error=lambda i, why: None, meanwhile=fail)
    assert len(pids) == 2
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()], "a worker outlived the failure"

    def first_quick(i: int) -> None:  # item 0 (the heavier) is done at once, item 1 hangs
        if i:
            time.sleep(60)

    def interrupted(i: int, result: object) -> None:  # as an interrupt would, while a worker still works
        pids.clear()
        pids.extend(children() - before)
        raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        fork_map(first_quick, range(2), [2, 1], 2, on_error=lambda i, why: None, on_done=interrupted)
    assert time.monotonic() - started < 30 and pids
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()], "a worker outlived the interrupt"


def test_a_forked_call_runs_beside_this_process_and_its_failure_is_its_own(tmp_path: Path) -> None:
    """``fork_call``: a stream's batch of held layers scanned in a child while the stream is read
    on. Its value comes back; a call that raises or a child that dies becomes the error value; a
    cancelled call leaves no process behind. And ``fork_map`` forks a single item only when
    something runs beside it."""
    import os
    import time

    from secretscan.parallel import fork_call, fork_map

    go_on = tmp_path / "parent-went-on"

    def waits_for_the_parent() -> bool:
        deadline = time.monotonic() + 20
        while not go_on.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return go_on.exists()

    forked = fork_call(waits_for_the_parent, lambda why: False)
    assert forked is not None
    go_on.touch()  # only reached if fork_call did not wait for the call
    assert forked.result() is True

    def fails() -> float:
        raise ValueError("unreadable")

    def dies() -> float:
        os._exit(9)

    failing, dying = fork_call(fails, lambda why: why), fork_call(dies, lambda why: why)
    assert failing is not None and dying is not None
    assert str(failing.result()).startswith("ValueError: unreadable")
    assert dying.result() == "worker process ended abnormally"

    hanging = fork_call(lambda: time.sleep(60), lambda why: None)
    assert hanging is not None
    pid = hanging._pid
    hanging.cancel()
    assert not Path(f"/proc/{pid}").exists()

    pids: list[int] = []
    fork_map(lambda i: pids.append(os.getpid()), range(1), [1], 2, on_error=lambda i, why: None)
    assert pids == [os.getpid()]  # alone: run here
    beside = fork_map(lambda i: os.getpid(), range(1), [1], 2, on_error=lambda i, why: 0, meanwhile=lambda: None)
    assert beside != [os.getpid()]  # beside work of this process: forked


def _child_of(proc: Path, parent: int) -> bool:
    try:
        stat = (proc / "stat").read_text()
    except OSError:
        return False
    return int(stat.rpartition(")")[2].split()[1]) == parent


def test_a_rule_error_met_while_layers_are_surveyed_is_one_line(cli, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "bad.yaml").write_text(
        "rules:\n  - id: x.bad\n    name: bad\n    severity: high\n    pattern: '(unclosed'\n"
        "    keywords: [x]\n    examples: [a]\n    negative_examples: [b]\n"
    )
    image = tmp_path / "two.tar"
    write_docker_archive(image, ImageSpec([Layer([Entry("a.txt", b"a\n")]), Layer([Entry("b.txt", b"b\n")])]))
    result = cli("scan", image, "--rules", rules, "-j", "2", "-q")
    assert result.code == 2
    assert result.err == (
        "secretscan: error: rule bad.yaml#x.bad: pattern does not compile: missing ), unterminated subpattern at "
        "position 0\n"
    )


def test_plugin_rules_find_the_same_through_the_pattern_pass() -> None:
    """detect-secrets' plugin regexes are text regexes (``\\w`` takes any letter); the pass reads
    bytes, so it must count a non-ASCII account name as word characters too."""
    pytest.importorskip("hyperscan", reason="the Hyperscan fast path is not installed (pip install hyperscan)")
    from secretscan.detect.engine import Engine
    from secretscan.detect.rules import load_rules

    rules = load_rules([REPO / "patterns"])
    fast, slow = Engine(rules), Engine(rules, hyperscan=False)
    assert fast.prefilter is not None
    key = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(24))
    hexkey = secrets.token_hex(32)
    lines = [
        f"COUCH_URL=https://bücher-prod:{key}@bücher-prod.cloudant.com/db\n",
        f"cloudant_password = '{hexkey}'\n",
        f"export IBM_CLOUD_IAM_API_KEY={secrets.token_urlsafe(33)[:44]}\n",
    ]
    for line in lines:
        data = line.encode()
        found = [(m.rule_id, m.secret) for m in fast.scan_bytes(data, "/app/.env")]
        assert found and found == [(m.rule_id, m.secret) for m in slow.scan_bytes(data, "/app/.env")], line


def test_every_rule_takes_the_pattern_pass_and_long_repeats_are_left_open(tmp_path: Path) -> None:
    """The prefilter only needs a superset of each rule: ``{64,20000}`` (a PEM body) is compiled as
    ``{64,}``, which Hyperscan builds at once; with it every rule compiles into the one database
    (none falls back to its keywords on every buffer)."""
    pytest.importorskip("hyperscan", reason="the Hyperscan fast path is not installed (pip install hyperscan)")
    from secretscan.detect.artefacts import ArtefactStore
    from secretscan.detect.engine import Engine
    from secretscan.detect.prefilter import relax_repeats
    from secretscan.detect.rules import load_rules

    assert relax_repeats(rb"-----BEGIN[A-Z ]{0,40}KEY-----[\sA-Za-z0-9+/=]{64,20000}?-----END") == (
        rb"-----BEGIN[A-Z ]{0,40}KEY-----[\sA-Za-z0-9+/=]{64,}?-----END"
    )
    assert relax_repeats(rb"\{1,9999}[{1,9999}]x{3,300}") == rb"\{1,9999}[{1,9999}]x{3,}"
    engine = Engine(load_rules([REPO / "patterns"]), store=ArtefactStore(tmp_path, shipped_dir=None))
    assert engine.prefilter is not None and engine.prefilter.unsupported == frozenset()
    assert list(tmp_path.glob("hyperscan-*.db"))  # and the next run loads it instead of compiling


def _layer(members: dict[str, tuple[bytes, int]]) -> bytes:
    """A layer of files, each with its time (npm gives a package's files its tarball's)."""
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, (data, mtime) in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), mtime, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_package_members_that_pass_the_quick_check_are_the_ones_the_full_scan_finds_nothing_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Files their package records vouch for (an npm tree by membership, a pip distribution and a
    dpkg package by digests) are taken in C and only counted when one Hyperscan pass finds nothing
    in them (``walk.layer._Members``). The layer's result is the same as when every file takes the
    full path, for every kind of file that must take it: a token, archives (zip, a gzip in a tar),
    a git object, credential files read by name, a source map holding a key, a file written later
    than its package, a file changed after install, a dpkg package's Python source (every provider
    rule searches it), package databases, a file in no package's directory."""
    import gzip
    import tarfile
    import zlib

    from secretscan.detection import Detection
    from secretscan.limits import Limits
    from secretscan.walk import layer, split

    stamp = 1_700_000_000
    token, pem = secretgen.github_pat(), secretgen.rsa_private_key_pem()
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("inner/config.js", f"module.exports = '{secretgen.github_pat()}';\n")
    nested = io.BytesIO()
    with tarfile.open(fileobj=nested, mode="w") as tar:  # its token is seen only once it is opened
        data = gzip.compress(f"token = '{secretgen.slack_bot_token()}'\n".encode())
        info = tarfile.TarInfo("inner.js.gz")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    source_map = {"version": 3, "sources": ["a.ts"], "sourcesContent": [f"const K = `{pem}`;\n"], "mappings": "AAAA"}
    root = "app/node_modules/quick/"
    members = {
        "app/node_modules/.package-lock.json": json.dumps(
            {"name": "app", "lockfileVersion": 3, "packages": {"node_modules/quick": {"version": "1.2.3"}}}
        ).encode(),
        root + "package.json": json.dumps({"name": "quick", "version": "1.2.3"}).encode(),
        **{f"{root}lib/plain{i}.js": f"module.exports = {i};\n".encode() * (i + 1) for i in range(40)},
        root + "lib/empty.js": b"",
        root + "lib/token.js": f"module.exports = '{token}';\n".encode(),
        root + "lib/bundle.zip": zipped.getvalue(),
        root + "lib/data.js.gz": gzip.compress(f"x = '{secretgen.github_pat()}'\n".encode()),
        root + "lib/fixture.tar": nested.getvalue(),
        root + "test/.env": f"DB_PASSWORD={secretgen.password()}\n".encode(),
        root + "kube/config.yaml": b"apiVersion: v1\nusers:\n- name: a\n  user:\n    token: "
        + secrets.token_hex(20).encode()
        + b"\n",
        root + "lib/index.js.map": json.dumps(source_map).encode(),
        "app/node_modules/notes.txt": b"in no package's directory\n",
    }
    # a pip distribution (digests in RECORD: one file changed after install, a compiled file listed
    # without one) and a dpkg package whose Python sources every provider rule searches
    site = "usr/local/lib/python3.11/site-packages/"
    aws = f'aws_secret_access_key = "{secretgen.aws_secret_access_key()}"\n'.encode()
    pip_files = {
        "tool/__init__.py": b"VERSION = 1\n",
        "tool/util.py": b"def f():\n    return 2\n" * 20,
        "tool/token.py": f"T = '{secretgen.github_pat()}'\n".encode(),
        "tool/changed.py": b"X = 1\n",
        "tool/__pycache__/util.cpython-311.pyc": b"\xa7\r\r\n" + bytes(60),
    }
    record = "".join(
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
        if not name.endswith(".pyc")
        else f"{name},,\n"
        for name, data in pip_files.items()
    )
    pip_files["tool/changed.py"] = aws  # after install: its digest no longer holds
    members.update({site + name: data for name, data in pip_files.items()})
    members[site + "tool-1.0.dist-info/RECORD"] = (record + "tool-1.0.dist-info/RECORD,,\n").encode()
    dist = "usr/lib/python3/dist-packages/"
    members[dist + "plug.py"] = aws
    members["usr/share/plug/plain.txt"] = b"Y = 2\n"
    members["var/lib/dpkg/status"] = b"Package: plug\nStatus: install ok installed\nVersion: 1.0\nArchitecture: all\n\n"
    members["var/lib/dpkg/info/plug.list"] = f"/{dist}plug.py\n/usr/share/plug/plain.txt\n".encode()
    members["var/lib/dpkg/info/plug.md5sums"] = "".join(
        f"{hashlib.md5(members[name]).hexdigest()}  {name}\n"  # noqa: S324 - dpkg's own digest
        for name in (dist + "plug.py", "usr/share/plug/plain.txt")
    ).encode()
    blob = f"{secretgen.github_pat()}\n".encode()
    members[root + ".git/objects/ab/" + "c" * 38] = zlib.compress(b"blob %d\0" % len(blob) + blob)
    layered = {name: (content, stamp) for name, content in members.items()}
    # written an hour after npm wrote its package, with a key only its name tells (the full rule set's)
    patch = f'const aws_secret_access_key = "{secretgen.aws_secret_access_key()}";\n'.encode()
    layered[root + "lib/patch.js"] = (patch, stamp + 3600)
    data = _layer(layered)

    detection = Detection.build([], b"k" * 32)
    limits = Limits()
    expected = split.records_of(split.survey(io.BytesIO(data), len(data), 1, limits.max_package_db_bytes))
    assert expected is not None

    full_path = []
    scan_file = layer._scan_file

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - a spy on the full path
        full_path.append(args[3].path)
        return scan_file(*args, **kwargs)

    monkeypatch.setattr(layer, "_scan_file", counted)

    def result() -> tuple:
        found = layer.scan_layer_piece(detection.engine, detection.sealer, limits, io.BytesIO(data), expected=expected)
        assert found.error is None and not found.skipped, (found.error, found.skipped)
        matches = sorted((s.rule_id, path, line) for s, path, line in found.matches)
        return matches, found.files, found.bytes, found.vouched_files, found.vouched_bytes, found.paths.present

    quick = result()
    taken_quickly = len(layered) - len(full_path)
    walked = set(full_path)
    full_path.clear()
    monkeypatch.setattr(layer._Members, "of", staticmethod(lambda *args: None))
    assert result() == quick
    assert len(full_path) == len(layered)  # every file took the full path this time
    assert taken_quickly >= 40  # the plain files (and only such files) took the quick one
    found_in = {path for _, path, _ in quick[0]}
    for must in (
        "lib/token.js",
        "lib/patch.js",
        "test/.env",
        "lib/index.js.map",
        "lib/bundle.zip",
        "lib/data.js.gz",
        "lib/fixture.tar",
        ".git/objects/",
    ):
        assert any(path.startswith("/" + root + must) for path in found_in), (must, sorted(found_in))
    for must in (site + "tool/token.py", site + "tool/changed.py", dist + "plug.py"):
        assert "/" + must in found_in, (must, sorted(found_in))
    # (a dpkg package's Python source takes the full path: every provider rule searches it)
    for quickly in (site + "tool/util.py", site + "tool/__pycache__/util.cpython-311.pyc", "usr/share/plug/plain.txt"):
        assert "/" + quickly not in walked, quickly  # verified files of recorded packages are taken too

"""Progress bars on a terminal; silence off a TTY and with --quiet.

The bar is read the way a user sees it: the real CLI draws it on a pseudo-terminal, and every
state it draws is parsed back. tqdm's own environment settings (``TQDM_MININTERVAL``,
``TQDM_MINITERS``) make it draw on every update, so each value the bar takes is on the screen:
no sampling, no timing."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import secretgen
from conftest import REPO
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive, write_oci_layout
from test_hostile_corpus import _archive, _file, _tar

from secretscan.config import ScanConfig
from secretscan.deadline import Deadline
from secretscan.detection import Detection
from secretscan.scan import Progress, ProgressUnit, Scanner
from secretscan.sources import SourceOptions, open_source
from secretscan.walk import split

DEMO = REPO / "fixtures" / "demo-image.tar"
EVERY_UPDATE = {"TQDM_MININTERVAL": "0", "TQDM_MINITERS": "1"}


def _run_with_tty_stderr(*args: str, target: Path | str = DEMO, env: dict[str, str] | None = None) -> str:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "secretscan", "scan", str(target), *args],
        stdout=subprocess.DEVNULL,
        stderr=follower,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200", **(env or {})},  # a bare pty reports no width: room for the whole bar
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


@dataclass(frozen=True)
class Draw:
    """One state of the bar as drawn: its description, position and total (None: unknown)."""

    desc: str
    position: float
    total: float | None
    shown: str
    """The position as printed (``"25.5M"``, ``"40 files"``)."""
    total_shown: str | None


_SCALE = {"": 1, "k": 1024, "M": 1024**2, "G": 1024**3}
_WITH_TOTAL = re.compile(r"^(?P<desc>.*?): +\d+%\|[^|]*\| (?P<n>[\d.]+[kMG]?)/(?P<t>[\d.]+[kMG]?) \[")
_FILES = re.compile(r"^(?P<desc>.*?): (?P<n>\d+) files \[")


def _number(text: str) -> float:
    if text[-1] in _SCALE:
        return float(text[:-1]) * _SCALE[text[-1]]
    return float(text)


def _draws(shown: str) -> list[Draw]:
    """Every state of a bar in what the terminal received (tqdm redraws a line after ``\\r``)."""
    found = []
    for line in re.split(r"[\r\n]", shown):
        if m := _WITH_TOTAL.match(line):
            found.append(Draw(m["desc"], _number(m["n"]), _number(m["t"]), m["n"], m["t"]))
        elif m := _FILES.match(line):
            found.append(Draw(m["desc"], float(m["n"]), None, f"{m['n']} files", None))
    return found


def _assert_one_monotonic_bar(draws: list[Draw]) -> None:
    assert len(draws) > 2, draws
    assert len({d.desc for d in draws}) == 1, {d.desc for d in draws}  # one bar, not one per worker
    assert len({d.total_shown for d in draws}) == 1, {d.total_shown for d in draws}  # its total is fixed
    backwards = [(a.shown, b.shown) for a, b in zip(draws, draws[1:], strict=False) if b.position < a.position]
    assert not backwards, backwards


def _stored_layer_bytes(archive: Path) -> int:
    """What the layers named by a docker archive's (or an OCI layout's) manifest weigh, as stored."""
    if archive.is_dir():
        index = json.loads((archive / "index.json").read_text())
        digest = index["manifests"][0]["digest"].split(":")[1]
        manifest = json.loads((archive / "blobs" / "sha256" / digest).read_text())
        return sum(layer["size"] for layer in manifest["layers"])
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        return sum(tar.getmember(name).size for name in manifest[0]["Layers"])


def _layer(n: int, files: int) -> Layer:
    """Text files a few hundred KiB each: a layer takes a worker a while, and reports as it reads."""
    line = b"export PATH=/usr/local/bin:/usr/bin:/bin  # line of an ordinary shell profile\n"
    entries = [Entry(f"layer{n}/file{i}.sh", line * (4000 + 500 * i)) for i in range(files)]
    entries.append(Entry(f"layer{n}/token.txt", f"token: {secretgen.github_pat(n)}\n".encode()))
    return Layer(entries)


def test_progress_bar_on_a_terminal() -> None:
    shown = _run_with_tty_stderr()
    assert "secretscan/demo:1.0 (9 layers)" in shown and "9/9 layers" in shown


def test_the_bar_of_a_parallel_image_only_moves_forward_to_its_total(tmp_path: Path) -> None:
    image = tmp_path / "image.tar"
    write_docker_archive(image, ImageSpec([_layer(n, 4 + n) for n in range(7)]))
    shown = _run_with_tty_stderr("-j", "2", target=image, env=EVERY_UPDATE)
    draws = _draws(shown)
    _assert_one_monotonic_bar(draws)
    assert draws[0].desc == "image.tar@0 (7 layers)"
    assert draws[-1].shown == draws[-1].total_shown  # it ends full
    # the total is what the layers weigh, as stored in the archive (tqdm prints three digits)
    stored = _stored_layer_bytes(image)
    assert draws[-1].total is not None and abs(draws[-1].total - stored) <= stored * 0.005


def test_the_bar_of_a_directory_counts_its_files(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc" / "app").mkdir(parents=True)
    (root / "srv").mkdir()
    for i in range(30):
        (root / "etc" / "app" / f"part{i}.conf").write_text(f"setting_{i} = value {i}\n" * 200)
    for i in range(12):
        (root / "srv" / f"page{i}.html").write_text("<p>hello</p>\n" * 100)
    (root / "srv" / "token.txt").write_text(f"token: {secretgen.github_pat(99)}\n")
    (root / "srv" / "current").symlink_to("page1.html")  # a link is not a file read
    shown = _run_with_tty_stderr(target=f"dir:{root}", env=EVERY_UPDATE)
    draws = _draws(shown)
    _assert_one_monotonic_bar(draws)
    assert draws[0].desc == f"dir:{root}"
    assert draws[-1].shown == "43 files"


@dataclass
class Recorder(Progress):
    """Every call the pipeline makes to a progress display, in order."""

    starts: list[tuple[str, int | None, int, ProgressUnit]] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    layers_done: int = 0
    ended: int = 0

    def start_image(self, name: str, total: int | None, layers: int, unit: ProgressUnit = ProgressUnit.BYTES) -> None:
        self.starts.append((name, total, layers, unit))

    def advance(self, amount: int) -> None:
        self.positions.append((self.positions[-1] if self.positions else 0) + amount)

    def layer_done(self) -> None:
        self.layers_done += 1

    def end_image(self) -> None:
        self.ended += 1


def _cut_layers(tmp: Path) -> Path:
    """Two layers big enough to be cut into pieces (with ``split.MIN_PIECE`` at 64 KiB), scanned
    by workers side by side, each with a task for its digest."""
    image = tmp / "cut.tar"
    pad = bytes(range(256)) * 160
    write_docker_archive(
        image, ImageSpec([Layer([Entry(f"l{n}/pad{i}.bin", pad) for i in range(12)]) for n in range(2)])
    )
    return image


def _compressed_layers(tmp: Path) -> Path:
    """Two gzip layers in an OCI layout: the bigger decompressed into memory by a worker and cut
    there, the other streamed (its records read first) meanwhile."""
    layout = tmp / "layout"
    pad = bytes(range(256)) * 160
    write_oci_layout(
        layout,
        ImageSpec([Layer([Entry(f"l{n}/pad{i}.bin", pad) for i in range(12 - 6 * n)], compression="gzip") for n in range(2)]),
    )
    return layout


def _plain_layers(tmp: Path) -> Path:
    return _archive(tmp, [_tar([_file(f"app{n}/f{i}.txt", b"x = 1\n" * 4000) for i in range(8)]) for n in range(2)])


@pytest.mark.parametrize(
    ("build", "jobs", "budget"),
    [(_cut_layers, 2, None), (_compressed_layers, 2, None), (_plain_layers, 1, None), (_plain_layers, 1, 0.0)],
    ids=["cut-layers-in-workers", "decompressed-into-memory", "one-by-one", "timed-out"],
)
def test_the_pipeline_moves_the_bar_forward_to_the_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build: Callable[[Path], Path], jobs: int, budget: float | None
) -> None:
    """Also when no layer could be read (``--timeout`` spent): the bar ends full when the scan ends."""
    monkeypatch.setattr(split, "MIN_PIECE", 64 * 1024)
    monkeypatch.setattr(split, "MIN_STORED_SURVEY", 0)  # the test's compressed layers are a few KiB
    image = build(tmp_path)
    config = ScanConfig(jobs=jobs)
    recorder = Recorder()
    scanner = Scanner(config, Detection.for_config(config), recorder, deadline=Deadline.after(budget))
    report = scanner.scan(open_source(f"oci:{image}" if image.is_dir() else str(image), SourceOptions()))
    assert bool(report.errors) == (budget is not None)  # the timed-out run says it did not scan
    ((_, total, layers, unit),) = recorder.starts
    assert unit is ProgressUnit.BYTES and total == _stored_layer_bytes(image) and layers == 2
    assert recorder.positions == sorted(recorder.positions) and recorder.positions[-1] == total
    assert recorder.layers_done == 2 and recorder.ended == 1
    if build is _cut_layers:  # the bar moves as each piece is done: the layers were cut into several
        assert len(recorder.positions) > 2 * layers


def test_quiet_on_a_terminal() -> None:
    assert _run_with_tty_stderr("--quiet") == ""


def test_silent_off_a_terminal() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "secretscan", "scan", str(DEMO)], capture_output=True, text=True, timeout=120
    )
    assert result.stderr == ""

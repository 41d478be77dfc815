"""``secretscan completion bash|zsh``: the scripts load in their shells and complete what a user
types — run in real bash (and zsh, where installed), not read as text."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import servers

from secretscan.cli import build_parser


def _script(cli: Callable, shell: str, tmp_path: Path) -> Path:
    result = cli("completion", shell)
    assert result.code == 0 and result.err == ""
    path = tmp_path / f"secretscan.{shell}"
    path.write_text(result.out)
    return path


_BASH_DRIVER = r"""
source "$1"
shift
for line in "$@"; do
    COMP_LINE="$line"
    COMP_POINT=${#COMP_LINE}
    read -ra COMP_WORDS <<< "$COMP_LINE"
    [[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _secretscan
    echo "${COMPREPLY[*]}"
done
"""


def _bash_complete(script: Path, cwd: Path, *lines: str) -> list[list[str]]:
    """What bash's completion function offers after each command line (``COMPREPLY``)."""
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", _BASH_DRIVER, "driver", str(script), *lines],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return [sorted(line.split()) for line in result.stdout.splitlines()]


def test_bash_accepts_the_script(cli, tmp_path: Path) -> None:
    script = _script(cli, "bash", tmp_path)
    check = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    loaded = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", f'source "{script}" && complete -p secretscan'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert loaded.stdout.strip() == "complete -o default -F _secretscan secretscan", loaded.stderr


def test_bash_completes_subcommands_options_and_their_values(cli, tmp_path: Path) -> None:
    script = _script(cli, "bash", tmp_path)
    (tmp_path / "rules-dir").mkdir()
    (tmp_path / "report.json").write_text("{}")
    offered = _bash_complete(
        script,
        tmp_path,
        "secretscan sc",
        "secretscan scan --fo",
        "secretscan scan img.tar -f j",
        "secretscan scan img.tar --fail-on cr",
        "secretscan scan img.tar --severity h",
        "secretscan scan --limit max_layer_bytes=8GiB --no-pro",
        "secretscan rules ",
        "secretscan migrate ",
        "secretscan migrate plan ",
        "secretscan completion ",
        "secretscan scan img.tar --cache-dir r",
        "secretscan scan img.tar --source d",
    )
    assert offered == [
        ["scan"],
        ["--format"],
        ["json", "junit"],
        ["critical"],
        ["high"],
        ["--no-progress"],
        ["check", "list"],
        ["apply", "plan"],
        [],  # the image: bash's own file name completion (-o default)
        ["bash", "zsh"],
        ["rules-dir"],  # directories only, not report.json
        ["daemon"],
    ]


def test_bash_offers_every_subcommand(cli, tmp_path: Path) -> None:
    script = _script(cli, "bash", tmp_path)
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    [offered] = _bash_complete(script, tmp_path, "secretscan ")
    assert set(commands) | {"-h", "--help", "--version"} == set(offered)
    assert {"version", "completion", "scan"} <= set(commands)


@pytest.fixture
def zsh() -> str:
    found = shutil.which("zsh")
    if found is None:
        servers.unavailable("zsh is not installed (make install-system): the zsh script is not checked")
    assert found is not None
    return found


def test_zsh_accepts_the_script(cli, tmp_path: Path, zsh: str) -> None:
    script = _script(cli, "zsh", tmp_path)
    check = subprocess.run([zsh, "-n", str(script)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr


_ZSH_DRIVER = r"""
zmodload zsh/zpty
script=$1 out=$2; shift 2
zpty z 'zsh -f -i'
zpty -w z "autoload -U compinit; compinit -u -D; source ${(q)script}; secretscan() { :; }"
zpty -w z "dump() { print -r -- \"[\$BUFFER]\" >> ${(q)out}; BUFFER='' }; zle -N dump; bindkey '^O' dump"
n=0
for line in "$@"; do
    zpty -wn z "$line"$'\t'$'\C-o'
    (( n++ ))
    for i in {1..200}; do   # until the line's buffer is dumped (at most 20 s)
        while zpty -rt z chunk; do :; done
        [[ -f $out && $(wc -l < $out) -ge $n ]] && break
        sleep 0.1
    done
done
zpty -d z
"""


def test_zsh_completes_in_an_interactive_shell(cli, tmp_path: Path, zsh: str) -> None:
    """Keys typed into a real interactive zsh (a pty): TAB completes, then a widget records the
    command line."""
    script = _script(cli, "zsh", tmp_path)
    out = tmp_path / "buffers"
    lines = ["secretscan sc", "secretscan scan --fo", "secretscan rules ch", "secretscan scan -f sa", "secretscan comp"]
    subprocess.run(
        [zsh, "-f", "-c", _ZSH_DRIVER, "driver", str(script), str(out), *lines],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.exists(), "zsh recorded no command line"
    assert out.read_text().splitlines() == [
        "[secretscan scan ]",
        "[secretscan scan --format=]",
        "[secretscan rules check ]",
        "[secretscan scan -f sarif ]",
        "[secretscan completion ]",
    ]

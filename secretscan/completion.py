"""``secretscan completion bash|zsh``: shell completion scripts generated from the argparse parser
itself, so a new subcommand, option or choice completes without anyone editing a script.

What completes: subcommands, each subcommand's options, the values of options with fixed choices
(``--format``, ``--source``, ...), positional choices (``rules check|list``), directories after
directory options and file names everywhere else (image paths, ``-o``). Option values nobody can
guess (``--timeout``, ``--username``) offer nothing.

argparse has no public API to walk a parser; this reads its documented-by-use internals
(``_actions``, ``_SubParsersAction``, ``_choices_actions``), which have been stable since
Python 3.2. The test suite runs the bash script in bash on every change.
"""

from __future__ import annotations

import argparse
import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PROG = "secretscan"


class Shell(str, enum.Enum):
    BASH = "bash"
    ZSH = "zsh"


class ValueKind(enum.Enum):
    NONE = "none"
    """A flag: takes no value."""
    CHOICE = "choice"
    FILE = "file"
    DIRECTORY = "directory"
    OTHER = "other"
    """A value nothing can be offered for (a duration, a user name, a regex)."""


@dataclass(frozen=True, slots=True)
class Option:
    names: tuple[str, ...]
    help: str
    kind: ValueKind
    choices: tuple[str, ...] = ()
    repeatable: bool = False
    metavar: str = "value"


@dataclass(frozen=True, slots=True)
class Positional:
    name: str
    help: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    help: str
    options: tuple[Option, ...]
    positionals: tuple[Positional, ...]


def describe(
    parser: argparse.ArgumentParser, hints: Mapping[str, Sequence[str]] | None = None
) -> tuple[tuple[Option, ...], tuple[Command, ...]]:
    """The top-level options and every subcommand of ``parser``. ``hints``: values to offer for
    options argparse does not restrict (``--fail-on`` parses its value itself), by option name."""
    hints = hints or {}
    top, commands = _options(parser, hints), []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                commands.append(Command(name, helps.get(name, ""), _options(sub, hints), _positionals(sub)))
    return top, tuple(commands)


def _options(parser: argparse.ArgumentParser, hints: Mapping[str, Sequence[str]]) -> tuple[Option, ...]:
    found = []
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        hinted = next((hints[name] for name in action.option_strings if name in hints), None)
        choices = tuple(str(c) for c in action.choices or hinted or ())
        if action.nargs == 0:
            kind = ValueKind.NONE
        elif choices:
            kind = ValueKind.CHOICE
        elif _is_directory(action):
            kind = ValueKind.DIRECTORY
        elif action.type is not None and getattr(action.type, "__name__", "") in ("Path", "PosixPath", "WindowsPath"):
            kind = ValueKind.FILE
        else:
            kind = ValueKind.OTHER
        found.append(
            Option(
                names=tuple(action.option_strings),
                help=_first_sentence(action.help or ""),
                kind=kind,
                choices=choices,
                repeatable=isinstance(action, argparse._AppendAction | argparse._CountAction),
                metavar=str(action.metavar or action.dest).lower(),
            )
        )
    return tuple(found)


def _is_directory(action: argparse.Action) -> bool:
    return action.metavar == "DIR" or action.dest == "dir" or action.dest.endswith("_dir")


def _positionals(parser: argparse.ArgumentParser) -> tuple[Positional, ...]:
    return tuple(
        Positional(str(a.metavar or a.dest), _first_sentence(a.help or ""), tuple(str(c) for c in a.choices or ()))
        for a in parser._actions
        if not a.option_strings and not isinstance(a, argparse._SubParsersAction)
    )


def _first_sentence(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    cut = re.split(r"(?<=[a-z)])[.;] ", text, maxsplit=1)[0]
    return cut if len(cut) <= 90 else cut[:87] + "..."


def script(parser: argparse.ArgumentParser, shell: Shell, hints: Mapping[str, Sequence[str]] | None = None) -> str:
    top, commands = describe(parser, hints)
    return _bash(top, commands) if shell is Shell.BASH else _zsh(top, commands)


# ---- bash


def _bash(top: Sequence[Option], commands: Sequence[Command]) -> str:
    """Words are split from ``COMP_LINE`` on blanks (``COMP_WORDS`` splits at ``=`` and ``:`` as
    well, which would make ``--limit a=1`` three words); the word being completed is bash's own,
    so that ``docker-archive:FI<TAB>`` completes the file name after the colon. ``-o default``:
    where the script offers nothing, bash completes file names."""
    top_words = " ".join([c.name for c in commands] + [n for o in top for n in o.names])
    cases = []
    for command in commands:
        takes = " ".join(n for o in command.options if o.kind is not ValueKind.NONE for n in o.names)
        opts = " ".join(n for o in command.options for n in o.names)
        value_cases = []
        for option in command.options:
            pattern = "|".join(option.names)
            if option.kind is ValueKind.CHOICE:
                value_cases.append(
                    f'{pattern}) COMPREPLY=($(compgen -W "{" ".join(option.choices)}" -- "$cur")); return ;;'
                )
            elif option.kind is ValueKind.DIRECTORY:
                value_cases.append(f'{pattern}) COMPREPLY=($(compgen -d -- "$cur")); return ;;')
            elif option.kind in (ValueKind.FILE, ValueKind.OTHER):
                value_cases.append(f"{pattern}) return ;;")
        positional_cases = [
            f'{index}) COMPREPLY=($(compgen -W "{" ".join(p.choices)}" -- "$cur")) ;;'
            for index, p in enumerate(command.positionals)
            if p.choices
        ]
        body = [
            f"        {command.name})",
            f'            takes=" {takes} "',
        ]
        if value_cases:
            body += ['            case "$prev" in', *(f"                {c}" for c in value_cases), "            esac"]
        body += [
            '            if [[ "$cur" == -* ]]; then',
            f'                COMPREPLY=($(compgen -W "{opts}" -- "$cur"))',
            "                return",
            "            fi",
        ]
        if positional_cases:
            body += [
                '            case "$(_secretscan_positional "$takes" "$at")" in',
                *(f"                {c}" for c in positional_cases),
                "            esac",
            ]
        body.append("            ;;")
        cases.append("\n".join(body))
    return (
        f"# bash completion for {PROG} (generated by `{PROG} completion bash`).\n"
        f"# Load it in this shell: source <({PROG} completion bash)\n"
        f"# or for every shell: {PROG} completion bash > ~/.local/share/bash-completion/completions/{PROG}\n"
        "\n"
        "_secretscan_positional() {\n"
        "    # how many positional words precede the current one (option values skipped)\n"
        '    local takes="$1" n=0 j\n'
        "    for ((j = $2 + 1; j < ${#_secretscan_words[@]} - 1; j++)); do\n"
        '        case "${_secretscan_words[j]}" in\n'
        "            -*=*) ;;\n"
        '            -*) [[ "$takes" == *" ${_secretscan_words[j]} "* ]] && ((j++)) ;;\n'
        "            *) ((n++)) ;;\n"
        "        esac\n"
        "    done\n"
        '    echo "$n"\n'
        "}\n"
        "\n"
        "_secretscan() {\n"
        '    local line="${COMP_LINE:0:COMP_POINT}" cur="${COMP_WORDS[COMP_CWORD]}"\n'
        '    local prev="" cmd="" at=0 takes="" i n\n'
        "    local -a _secretscan_words\n"
        '    read -ra _secretscan_words <<< "$line"\n'
        '    [[ -z "$line" || "$line" =~ [[:space:]]$ ]] && _secretscan_words+=("")\n'
        "    n=${#_secretscan_words[@]}\n"
        '    (( n > 1 )) && prev="${_secretscan_words[n-2]}"\n'
        "    for ((i = 1; i < n - 1; i++)); do\n"
        '        if [[ "${_secretscan_words[i]}" != -* ]]; then cmd="${_secretscan_words[i]}"; at=$i; break; fi\n'
        "    done\n"
        "    COMPREPLY=()\n"
        '    case "$cmd" in\n'
        '        "")\n'
        f'            COMPREPLY=($(compgen -W "{top_words}" -- "$cur"))\n'
        "            ;;\n" + "\n".join(cases) + "\n"
        "    esac\n"
        "}\n"
        f"complete -o default -F _secretscan {PROG}\n"
    )


# ---- zsh


def _zsh(top: Sequence[Option], commands: Sequence[Command]) -> str:
    """A native ``_arguments`` completion with descriptions. Works from ``fpath`` (as
    ``_secretscan``) and when sourced (``source <(secretscan completion zsh)``)."""
    lines = [
        f"#compdef {PROG}",
        f"# zsh completion for {PROG} (generated by `{PROG} completion zsh`).",
        f"# Load it in this shell: source <({PROG} completion zsh)",
        f'# or for every shell: {PROG} completion zsh > "${{fpath[1]}}/_{PROG}"',
        "",
        "_secretscan() {",
        "    local context state state_descr line",
        "    typeset -A opt_args",
        "    _arguments -C \\",
        *(f"        {spec} \\" for option in top for spec in _zsh_specs(option)),
        "        '1: :->command' \\",
        "        '*:: :->args'",
        "    case $state in",
        "        command)",
        "            local -a commands",
        "            commands=(",
        *(
            f"                {_zsh_quote(c.name + ':' + _zsh_text(c.help).replace(':', chr(92) + ':'))}"
            for c in commands
        ),
        "            )",
        "            _describe -t commands 'secretscan command' commands",
        "            ;;",
        "        args)",
        "            case $line[1] in",
    ]
    for command in commands:
        specs = [spec for option in command.options for spec in _zsh_specs(option)]
        for index, positional in enumerate(command.positionals):
            action = f"({' '.join(positional.choices)})" if positional.choices else "_files"
            specs.append(_zsh_quote(f"{index + 1}:{_zsh_text(positional.name).lower()}:{action}"))
        lines.append(f"                {command.name})")
        lines.append("                    _arguments -S \\")
        lines.extend(f"                        {spec} \\" for spec in specs[:-1])
        lines.append(f"                        {specs[-1]}" if specs else "                        ''")
        lines.append("                    ;;")
    lines += [
        "            esac",
        "            ;;",
        "    esac",
        "}",
        "",
        "if [[ $zsh_eval_context[-1] == loadautofunc ]]; then",
        '    _secretscan "$@"',
        "else",
        f"    compdef _secretscan {PROG}",
        "fi",
        "",
    ]
    return "\n".join(lines)


def _zsh_specs(option: Option) -> list[str]:
    exclusive = "*" if option.repeatable else f"({' '.join(option.names)})"
    description = f"[{_zsh_text(option.help)}]"
    if option.kind is ValueKind.NONE:
        return [_zsh_quote(f"{exclusive}{name}{description}") for name in option.names]
    action = {
        ValueKind.CHOICE: f"({' '.join(option.choices)})",
        ValueKind.FILE: "_files",
        ValueKind.DIRECTORY: "_files -/",
        ValueKind.OTHER: " ",
    }[option.kind]
    message = _zsh_text(option.metavar).replace(":", " ") or "value"
    specs = []
    for name in option.names:
        takes = "=" if name.startswith("--") else "+"
        specs.append(_zsh_quote(f"{exclusive}{name}{takes}{description}:{message}:{action}"))
    return specs


def _zsh_text(text: str) -> str:
    """Help text inside ``[...]`` of an ``_arguments`` spec: no brackets, no backslashes."""
    return text.replace("\\", "/").replace("[", "(").replace("]", ")")


def _zsh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"

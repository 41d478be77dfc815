"""Command line: parse, build the frozen config, wire the library, map results to exit codes.

Exit codes: 0 nothing at or above ``--fail-on``; 1 findings; 2 usage, config or scan error;
3 scan incomplete (something skipped) with ``--fail-on-incomplete``.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from secretscan.about import render_json as render_versions_json
from secretscan.about import render_text as render_versions_text
from secretscan.about import versions
from secretscan.baseline import read_baseline, write_baseline
from secretscan.completion import Shell, script
from secretscan.config import CONFIG_FILENAME, ScanConfig, load_config, parse_limit, with_limits
from secretscan.deadline import NO_DEADLINE, Deadline, parse_duration
from secretscan.detect.checks import check_rules
from secretscan.detect.rules import BUILTIN_RULES_DIR, load_rules
from secretscan.detect.scope import SelfIdentifying
from secretscan.detection import Detection
from secretscan.docker_plugin import install as install_docker_plugin
from secretscan.enrich import Enricher
from secretscan.errors import SecretScanError, UsageError
from secretscan.heap import tune_allocator
from secretscan.models import ScanReport, Severity
from secretscan.outputs import FORMAT_ENV, parse_also, parse_severities, report_format, shown, summary_line
from secretscan.progress import make_progress, make_sweep_progress
from secretscan.report import OutputFormat
from secretscan.safewrite import PRIVATE_MODE, PUBLIC_MODE, check_output, write_file
from secretscan.scan import Scanner
from secretscan.sources import SourceOptions, open_source
from secretscan.sources.auth import Credentials, default_keychain
from secretscan.sources.reference import STDIN_IS_A_TERMINAL, reads_stdin
from secretscan.sources.registry_options import RegistryOptions
from secretscan.stores.apply import apply_plan
from secretscan.stores.aws.connect import DEFAULT_MIGRATE_PREFIX, AwsSecretsSettings, TagSelector
from secretscan.stores.aws.read import AwsSecretsStore
from secretscan.stores.aws.write import AwsSecretsDestination
from secretscan.stores.matcher import StoreMatcher
from secretscan.stores.model import Destination, ManagedStore
from secretscan.stores.plan import make_plan, render_markdown
from secretscan.stores.plan import render_json as render_plan_json
from secretscan.stores.vault.connect import KvLocation, VaultSettings
from secretscan.stores.vault.read import VaultStore
from secretscan.stores.vault.write import VaultDestination
from secretscan.sweep.report import pick_sweep, previous_sweep, summary_table, sweep_report
from secretscan.sweep.store import Store, SweepRow, default_db_path
from secretscan.sweep.where import render_where, where
from secretscan.terminal import TerminalSafeFormatter, terminal_safe, traceback_safe
from secretscan.verify import VERIFIER_NAMES, Verifier
from secretscan.version import __version__

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR, EXIT_INCOMPLETE = 0, 1, 2, 3
logger = logging.getLogger("secretscan")


def build_parser() -> argparse.ArgumentParser:
    """Every parser refuses abbreviations (``allow_abbrev=False``): with prefix matching,
    ``--password`` would be read as ``--password-stdin`` and the password that follows it as the
    image to scan, or echoed back as an unrecognised argument into a CI log."""
    parser = argparse.ArgumentParser(
        prog="secretscan", description="Find leaked credentials in container images.", allow_abbrev=False
    )
    parser.add_argument("--version", action="version", version=f"secretscan {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "image",
            help="docker://[REGISTRY/]REPO[:TAG|@DIGEST], docker-daemon:REPO[:TAG], docker-archive:PATH[:REF|:@N], "
            "oci:DIR[:REF], oci-archive:PATH[:REF], dir:PATH, a bare path, a bare REPO[:TAG] (daemon, then registry), "
            "or - for an archive on standard input (docker save IMAGE | secretscan scan -)",
        )
        registry_args(p, single_image=True)
        p.add_argument(
            "--timeout",
            type=_duration,
            metavar="DURATION",
            help="stop after this long (90s, 15m, 1h) and report what was found and what was not finished (exit 2)",
        )
        p.add_argument(
            "--search-packages",
            action="store_true",
            help="search the files verified against their package managers' records (pip, dpkg, npm, ...) with every "
            "provider rule, to list what they publish; by default only with the self-identifying rules (a key that "
            "names itself: ghp_..., AKIA..., a private key), as no value in them can fail the scan",
        )
        store_args(p)
        run_args(p)

    scan = sub.add_parser("scan", help="scan an image and report the secrets it ships")
    common(scan)
    report_args(scan)
    scan.add_argument(
        "--show-secrets", action="store_true", help="put full secret values in the report (files are created mode 0600)"
    )
    scan.add_argument("--baseline", type=Path, help="ignore findings recorded in this baseline file")
    scan.add_argument(
        "--verify",
        action="store_true",
        help="ask each provider whether found secrets are live (opt-in; read-only requests to the configured endpoints)",
    )
    scan.add_argument(
        "--verify-provider",
        action="append",
        default=[],
        metavar="NAME",
        help=f"only these verifiers (repeatable): {', '.join(sorted(VERIFIER_NAMES))}",
    )

    migrate = sub.add_parser(
        "migrate", help="plan or perform the move of hardcoded secrets into Vault KV v2 or AWS Secrets Manager"
    )
    migrate.add_argument("action", choices=["plan", "apply"])
    common(migrate)
    migrate.add_argument(
        "--to",
        metavar="DESTINATION",
        help="where new secrets go: [vault:]MOUNT/PREFIX (default: vault.migrate_to, secret/secretscan), or "
        f"aws-secrets[:PREFIX] for AWS Secrets Manager (names under PREFIX, default {DEFAULT_MIGRATE_PREFIX})",
    )
    migrate.add_argument(
        "--kms-key-id",
        metavar="KEY",
        help="aws-secrets: the KMS key (id, ARN or alias) new secrets are encrypted with (default: aws/secretsmanager)",
    )
    migrate.add_argument(
        "--aws-tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="aws-secrets: put this tag on the secrets apply creates (repeatable)",
    )
    migrate.add_argument(
        "-f",
        "--format",
        choices=["markdown", "json"],
        help="plan output format (default: json for -o *.json, else markdown)",
    )
    migrate.add_argument("-o", "--output", type=Path, help="write the plan to FILE instead of stdout")
    migrate.add_argument(
        "--force", action="store_true", help="apply: overwrite a different existing value (check-and-set)"
    )
    migrate.add_argument(
        "--record",
        type=Path,
        default=Path("secretscan-migrations.json"),
        help="apply: append what was written (paths, versions, fingerprints; never values) to FILE",
    )

    base = sub.add_parser("baseline", help="record the current findings as accepted (by fingerprint)")
    common(base)
    base.add_argument("-o", "--output", type=Path, required=True)

    sweep = sub.add_parser(
        "sweep",
        help="scan every image of a registry or ECR account; each unique layer once, results in a database",
    )
    sweep.add_argument("target", help="a registry HOST[:PORT] (its catalog, or --repo) or ecr:REGION[/ACCOUNT]")
    sweep.add_argument("--repo", action="append", default=[], metavar="NAME", help="only this repository (repeatable)")
    sweep.add_argument("--repos-file", type=Path, metavar="FILE", help="repositories to sweep, one per line")
    sweep.add_argument("--tag", action="append", default=[], metavar="GLOB", help="only tags matching (repeatable)")
    sweep.add_argument("--tag-regex", metavar="REGEX", help="only tags matching this regular expression")
    sweep.add_argument("--newest", type=int, metavar="N", help="only the N most recently created images per repository")
    sweep.add_argument("--since", metavar="DATE", help="only images created (ECR: pushed) at or after DATE (ISO 8601)")
    sweep.add_argument("--db", type=Path, help=f"sweep database (default: {default_db_path()})")
    sweep.add_argument(
        "--dask", metavar="tcp://SCHEDULER:8786", help="scan layers on this Dask cluster instead of local processes"
    )
    sweep.add_argument(
        "--keep",
        type=int,
        default=30,
        metavar="N",
        help="keep the newest N sweeps in the database (default 30); older ones and caches of unused rule packs go",
    )
    sweep.add_argument(
        "--max-repositories",
        type=int,
        default=100_000,
        metavar="N",
        help="sweep at most N repositories (default 100000); a catalog with more is reported as cut short",
    )
    registry_args(sweep, single_image=False)
    store_args(sweep)
    run_args(sweep)
    report_args(sweep)

    report = sub.add_parser("report", help="render a recorded sweep from the database")
    report.add_argument("--db", type=Path, help=f"sweep database (default: {default_db_path()})")
    report.add_argument("--sweep", type=int, metavar="ID", help="which sweep (default: the latest)")
    report.add_argument(
        "--since-last", action="store_true", help="only secrets new in an image since the previous sweep of the target"
    )
    report.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    report.add_argument("--rules", type=Path, action="append", default=[], help=argparse.SUPPRESS)
    report.add_argument("-q", "--quiet", action="store_true", help=argparse.SUPPRESS)
    report_args(report)

    where = sub.add_parser("where", help="which images ship a secret (by fingerprint) or a layer (by digest)")
    where.add_argument("needle", metavar="FINGERPRINT|DIGEST", help="ssf1:… fingerprint, or a layer's sha256: digest")
    where.add_argument("--db", type=Path, help=f"sweep database (default: {default_db_path()})")
    where.add_argument("-f", "--format", choices=["text", "json"], default="text")
    where.add_argument("--all-sweeps", action="store_true", help="every recorded sweep, not only the latest")

    plugin = sub.add_parser(
        "install-docker-plugin", help="install `docker secretscan` (a Docker CLI plugin) for this user"
    )
    plugin.add_argument(
        "--dir", type=Path, help="plugin directory (default: $DOCKER_CONFIG/cli-plugins or ~/.docker/cli-plugins)"
    )

    rules = sub.add_parser("rules", help="check or list the rule pack")
    rules.add_argument("action", choices=["check", "list"])
    rules.add_argument(
        "--self-identifying",
        action="store_true",
        help="list only the rules that search package content by default (a secret that names its own kind)",
    )
    rules.add_argument("--rules", type=Path, action="append", default=[], metavar="DIR")
    rules.add_argument("--config", type=Path)

    version = sub.add_parser(
        "version", help="versions of secretscan, its rule pack, Hyperscan and Python (for bug reports and CI logs)"
    )
    version.add_argument("--json", action="store_true", help="as a JSON object")
    version.add_argument(
        "--rules", type=Path, action="append", default=[], metavar="DIR", help="count these extra rule directories too"
    )
    version.add_argument("--config", type=Path, help="and the rule directories of this config file")

    completion = sub.add_parser(
        "completion",
        help="print a shell completion script: source <(secretscan completion bash)",
        description="Print a completion script for bash or zsh. bash: source <(secretscan completion bash), "
        "or save it as ~/.local/share/bash-completion/completions/secretscan. zsh: source <(secretscan "
        "completion zsh), or save it as _secretscan in a directory of $fpath.",
    )
    completion.add_argument("shell", choices=[s.value for s in Shell])
    for subparser in sub.choices.values():
        subparser.allow_abbrev = False
    return parser


def report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-f",
        "--format",
        choices=[f.value for f in OutputFormat],
        metavar="FORMAT",
        help=f"{', '.join(f.value for f in OutputFormat)}. Default: what -o's name says (.json, .sarif, .html, "
        f".xml for junit, gl-secret-detection-report.json), else ${FORMAT_ENV}, else text",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="write the report to FILE instead of stdout (a one-line summary goes to stderr unless -q)",
    )
    p.add_argument(
        "--severity",
        metavar="LEVEL[,LEVEL]",
        help="show only findings of these severities (e.g. high,critical) in the report; a display filter: "
        "the exit code still follows --fail-on",
    )
    p.add_argument(
        "--fail-on",
        default="info",
        metavar="SEVERITY",
        help="exit 1 when a finding is at or above SEVERITY: info (default: any finding), low, medium, high, critical, or none",
    )
    p.add_argument("--fail-on-incomplete", action="store_true", help="exit 3 when something could not be scanned")
    p.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="FORMAT=FILE",
        help="also write the same report in another format to FILE (repeatable), e.g. --also junit=leaks.xml",
    )


def registry_args(p: argparse.ArgumentParser, *, single_image: bool) -> None:
    reg = p.add_argument_group("registries and the Docker daemon")
    if single_image:
        reg.add_argument(
            "--source",
            choices=["auto", "daemon", "registry"],
            default="auto",
            help="for a bare REPO[:TAG]: the local daemon first (auto), only the daemon, or only the registry",
        )
    reg.add_argument(
        "--platform",
        metavar="OS/ARCH[/VARIANT]",
        help="image of a multi-platform index to scan (default: the host's; for sweeps: every platform)",
    )
    if single_image:
        reg.add_argument("--all-platforms", action="store_true", help="scan every platform of a multi-platform index")
    reg.add_argument(
        "--username",
        default=os.environ.get("SECRETSCAN_REGISTRY_USERNAME"),
        help="registry user; the password comes from --password-stdin (never from the command line)",
    )
    reg.add_argument(
        "--password-stdin", action="store_true", help="read the registry password or token from standard input"
    )
    reg.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="reach this registry over plain HTTP (loopback registries always are), repeatable",
    )
    reg.add_argument(
        "--tls-verify",
        action="store_true",
        help="require verified HTTPS even for loopback and --insecure-registry registries",
    )
    reg.add_argument(
        "--stall-timeout",
        type=_duration,
        default=30.0,
        metavar="DURATION",
        help="abort a registry transfer that receives under 1 KiB/s over this much waiting (default 30s)",
    )
    reg.add_argument(
        "--ecr-registry",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="treat this registry as Amazon ECR (credentials from boto3), repeatable",
    )


def store_args(p: argparse.ArgumentParser) -> None:
    stores = p.add_argument_group("managed secrets (HashiCorp Vault, AWS Secrets Manager)")
    stores.add_argument(
        "--vault",
        action="store_true",
        help="compare findings with the values in Vault KV v2 (VAULT_ADDR, VAULT_TOKEN / AppRole / Kubernetes auth)",
    )
    stores.add_argument(
        "--vault-kv",
        action="append",
        default=[],
        metavar="MOUNT[/PREFIX]",
        help="KV v2 mount and prefix to search (repeatable; default: vault.kv in secretscan.yaml)",
    )
    stores.add_argument(
        "--aws-secrets",
        nargs="?",
        const="",
        metavar="PREFIX",
        help="compare findings with the secrets in AWS Secrets Manager, or only those whose names start with PREFIX "
        "(write --aws-secrets=PREFIX: a bare word after --aws-secrets is taken as the prefix); boto3's credentials, "
        "region and endpoint settings",
    )
    stores.add_argument(
        "--aws-secrets-tag",
        action="append",
        default=[],
        metavar="KEY[=VALUE]",
        help="--aws-secrets: only secrets with this tag (repeatable: all of them)",
    )


def run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help=f"config file (default: $SECRETSCAN_CONFIG or ./{CONFIG_FILENAME})")
    p.add_argument(
        "--rules", type=Path, action="append", default=[], metavar="DIR", help="extra rule directory (repeatable)"
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        metavar="N",
        help="worker processes for the layers of local images (default: CPUs)",
    )
    p.add_argument(
        "--no-hyperscan", action="store_true", help="keyword prefilter only (same findings, slower): for comparison"
    )
    p.add_argument(
        "--no-package-provenance",
        action="store_true",
        help="do not list values seen only in pristine package files as published (for images whose "
        "package databases may be forged)",
    )
    p.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one safety limit of secretscan.yaml (repeatable), e.g. max_nested_depth=2, max_layer_bytes=8GiB",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="where the compiled rule database is cached (default: $SECRETSCAN_CACHE_DIR, "
        "else $XDG_CACHE_HOME/secretscan or ~/.cache/secretscan)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars, no summary line, no warnings")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (warnings and the summary line stay)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug messages; a traceback on an internal error")


_PASSWORD_HELP = (
    "passwords are never taken from the command line (they would end up in shell history, CI logs and "
    "the process list): use --username with --password-stdin, SECRETSCAN_REGISTRY_USERNAME and "
    "SECRETSCAN_REGISTRY_PASSWORD, docker login, or a credential helper"
)


def _password_option(argv: list[str]) -> str | None:
    """The option name if argv tries to pass a password (``--password``, ``--pass``, ``-p``…),
    without its value, which must never be echoed."""
    for token in argv:
        if token == "--":
            return None
        name = token.split("=", 1)[0]
        if name.startswith("--"):
            lowered = name.lower()
            if name != "--password-stdin" and ("pass" in lowered or "pwd" in lowered):
                return name
        elif name.startswith("-p"):
            return "-p"
    return None


def _stdin_twice(args: argparse.Namespace, extra: list[str]) -> str | None:
    """The one-line complaint when ``-`` (standard input) comes with more images, or twice: a pipe
    holds one archive and can be read once. None when the extra arguments are something else
    (argparse names them)."""
    image = getattr(args, "image", None)
    if image is None or not any(reads_stdin(a) for a in (image, *extra)):
        return None
    if any(a.startswith("-") and not reads_stdin(a) for a in extra):
        return None
    return f"one image per run, and standard input (-) can be read once: got {' '.join((image, *extra))}"


def _stdin_refusal(args: argparse.Namespace) -> str | None:
    """The line to print when an image on standard input (``-``) cannot be read in this run, said
    before any work: a terminal is not an archive (waiting on it would look like a hang), and
    ``--password-stdin`` would take the archive's first line for a password."""
    if not reads_stdin(getattr(args, "image", None) or ""):
        return None
    if getattr(args, "password_stdin", False):
        return (
            "secretscan: error: --password-stdin and - both read standard input (an archive needs no registry password)"
        )
    try:
        terminal = sys.stdin is not None and sys.stdin.isatty()
    except (OSError, ValueError):  # closed, or not a real file
        terminal = False
    return f"secretscan: {STDIN_IS_A_TERMINAL}" if terminal else None


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = sys.argv[1:] if argv is None else list(argv)
    refused = _password_option(arguments)
    if refused is not None:
        print(f"secretscan: error: {refused} is not an option: {_PASSWORD_HELP}", file=sys.stderr)
        return EXIT_ERROR
    try:
        args, extra = parser.parse_known_args(arguments)
        if extra and (clash := _stdin_twice(args, extra)) is not None:
            _print_error(clash)
            return EXIT_ERROR
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:
        return EXIT_ERROR if exc.code not in (0, None) else EXIT_CLEAN
    refusal = _stdin_refusal(args)
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return EXIT_ERROR
    tune_allocator()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TerminalSafeFormatter("secretscan: %(message)s"))  # messages may quote images
    logging.basicConfig(handlers=[handler])
    logger.setLevel(
        logging.ERROR
        if getattr(args, "quiet", False)
        else logging.DEBUG
        if getattr(args, "verbose", False)
        else logging.WARNING
    )
    try:
        if args.command == "rules":
            return _rules(args)
        if args.command == "migrate":
            return _migrate(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "report":
            return _report(args)
        if args.command == "where":
            return _where(args)
        if args.command == "version":
            about = versions(_config(args).rule_dirs)
            sys.stdout.write(render_versions_json(about) if args.json else render_versions_text(about))
            return EXIT_CLEAN
        if args.command == "completion":
            levels = [str(level) for level in Severity]
            hints = {"--fail-on": [*levels, "none"], "--severity": levels, "--verify-provider": sorted(VERIFIER_NAMES)}
            sys.stdout.write(script(build_parser(), Shell(args.shell), hints))
            return EXIT_CLEAN
        if args.command == "install-docker-plugin":
            path = install_docker_plugin(args.dir)
            print(
                f"installed {terminal_safe(str(path))}: run `docker secretscan IMAGE` (e.g. docker secretscan --fail-on high IMAGE && docker push IMAGE)"
            )
            return EXIT_CLEAN
        return _scan(args)
    except SecretScanError as exc:
        _print_error(str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("secretscan: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - last resort: one line for the user, the trace with -v
        if getattr(args, "verbose", False):
            sys.stderr.write(traceback_safe(exc))  # as Python prints it, but a message quoting an image escaped
            return EXIT_ERROR
        print(
            f"secretscan: internal error: {type(exc).__name__}: {terminal_safe(str(exc)[:200])} (run with -v for details; "
            "please report it)",
            file=sys.stderr,
        )
        return EXIT_ERROR


def _config(args: argparse.Namespace) -> ScanConfig:
    explicit = args.config or (Path(os.environ["SECRETSCAN_CONFIG"]) if os.environ.get("SECRETSCAN_CONFIG") else None)
    config = load_config(explicit or Path(CONFIG_FILENAME), required=explicit is not None)
    config = with_limits(config, dict(parse_limit(text) for text in getattr(args, "limit", [])))
    return replace(
        config,
        rule_dirs=config.rule_dirs + tuple(p.resolve() for p in args.rules),
        hyperscan=config.hyperscan and not getattr(args, "no_hyperscan", False),
        package_provenance=config.package_provenance and not getattr(args, "no_package_provenance", False),
        search_packages=config.search_packages or getattr(args, "search_packages", False),
        jobs=max(1, args.jobs) if getattr(args, "jobs", None) else config.jobs,
        cache_dir=_cache_dir(args) or config.cache_dir,
    )


def _cache_dir(args: argparse.Namespace) -> Path | None:
    """``--cache-dir``, else ``SECRETSCAN_CACHE_DIR`` (a CI runner keeps its cache there)."""
    chosen = getattr(args, "cache_dir", None) or os.environ.get("SECRETSCAN_CACHE_DIR")
    if not chosen:
        return None
    path = Path(chosen).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"cache directory {path}: not a directory")
    return path.resolve()


def _rules(args: argparse.Namespace) -> int:
    ruleset = load_rules([BUILTIN_RULES_DIR, *_config(args).rule_dirs], VERIFIER_NAMES)
    if args.action == "list":
        chosen = SelfIdentifying.derive(ruleset).rule_ids if args.self_identifying else None
        for rule in ruleset.rules:
            if chosen is None or rule.id in chosen:
                print(terminal_safe(f"{rule.id:45} {str(rule.severity):9} {rule.name}"))
        return EXIT_CLEAN
    failures = check_rules(ruleset)
    for failure in failures:
        print(terminal_safe(f"{failure.origin}: {failure.problem}"))
    n_examples = sum(len(r.examples) + len(r.negative_examples) for r in ruleset.rules)
    print(f"{len(ruleset)} rules, {n_examples} examples checked, {len(failures)} problems")
    return EXIT_ERROR if failures else EXIT_CLEAN


def _scan(args: argparse.Namespace) -> int:
    deadline = Deadline.after(args.timeout)
    _check_outputs(args)
    config = _config(args)
    show = bool(getattr(args, "show_secrets", False))
    config = replace(config, show_secrets=show)
    fail_on = None if getattr(args, "fail_on", "info") == "none" else _severity(getattr(args, "fail_on", "info"))
    baseline = read_baseline(args.baseline) if getattr(args, "baseline", None) else frozenset()
    source = open_source(args.image, _source_options(args, deadline))
    detection = _deferred_detection(config)
    enrichers = _enrichers(args, config, detection)
    scanner = Scanner(config, detection, make_progress(args.quiet or args.no_progress), baseline, enrichers, deadline)
    report = scanner.scan(source)
    if args.command == "baseline":
        count = write_baseline(report, args.output)
        print(f"secretscan: wrote {count} finding(s) to baseline {terminal_safe(str(args.output))}", file=sys.stderr)
        return EXIT_ERROR if report.errors else EXIT_CLEAN
    _write_reports(args, report, private=show)
    return _exit_code(report, fail_on, args.fail_on_incomplete)


def _write_reports(args: argparse.Namespace, report: ScanReport, *, private: bool) -> None:
    """The report (``-o`` or stdout) and the ``--also`` files, as ``--severity`` shows it; then
    the errors; then, when the report went to a file, one summary line on stderr (unless -q)."""
    fmt = report_format(args.format, args.output)
    visible = shown(report, parse_severities(args.severity))
    hidden = len(report.findings) - len(visible.findings)
    color = fmt is OutputFormat.TEXT and args.output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    _emit(fmt.render(visible, color=color), args.output, private=private)
    also = parse_also(args.also)
    for extra_format, path in also:
        _emit(extra_format.render(visible), path, private=private)
    for error in report.errors:
        _print_error(error)
    if getattr(args, "quiet", False):
        return
    if args.output is not None:
        print(summary_line(visible, hidden, [(fmt, args.output), *also]), file=sys.stderr)
    elif hidden:
        print(
            f"secretscan: {hidden} finding(s) not shown (--severity {terminal_safe(args.severity)}); "
            "they still count for --fail-on",
            file=sys.stderr,
        )


def _sweep(args: argparse.Namespace) -> int:
    # Here, not at the top: the sweep brings the registry client (requests, urllib3), which every
    # other command would load at start for nothing.
    from secretscan.sweep.run import Sweeper, SweepOptions
    from secretscan.sweep.targets import SweepTarget, TagFilter, parse_since, read_repository_file

    _check_outputs(args)
    config = _config(args)
    if args.repos_file:
        args.repo = [*args.repo, *read_repository_file(args.repos_file)]
    try:
        tag_regex = re.compile(args.tag_regex) if args.tag_regex else None
    except re.error as exc:
        raise UsageError(f"--tag-regex: {exc}") from None
    if args.newest is not None and args.newest < 1:
        raise UsageError("--newest must be at least 1")
    tags = TagFilter(tuple(args.tag), tag_regex, args.newest, parse_since(args.since) if args.since else None)
    target = SweepTarget.parse(args.target, args.repo, args.ecr_registry[0] if args.ecr_registry else None)
    source_options = _source_options(args)
    stores = _stores(args, config)
    store = Store(args.db or default_db_path())
    try:
        detection = Detection.for_config(config)
        scanner = Scanner(config, detection)
        sweeper = Sweeper(
            scanner,
            store,
            source_options.keychain,
            replace(source_options.registry, all_platforms=True),
            SweepOptions(tags, args.platform, args.dask, config.jobs, max(1, args.max_repositories)),
            make_sweep_progress(args.quiet),
            matchers=[StoreMatcher(s, detection.sealer.key) for s in stores],
        )
        sweep_id, summary = sweeper.run(target)
        pruned = store.prune(max(1, args.keep))
        if not args.quiet:
            sys.stderr.write(summary_table(sweep_id, summary))
            if pruned:
                print(
                    f"secretscan: removed {pruned} old sweep(s) from {terminal_safe(str(store.path))} (--keep {args.keep})",
                    file=sys.stderr,
                )
        return _render_sweep(args, store, pick_sweep(store, sweep_id), None)
    finally:
        store.close()


def _report(args: argparse.Namespace) -> int:
    _check_outputs(args)
    path = args.db or default_db_path()
    if not path.is_file():
        raise UsageError(f"{path}: no sweep database here (run secretscan sweep --db {path} first)")
    store = Store(path)
    try:
        sweep = pick_sweep(store, args.sweep)
        since = previous_sweep(store, sweep) if args.since_last else None
        if args.since_last and since is None:
            print(
                f"secretscan: sweep {sweep.id} is the first finished sweep of {terminal_safe(sweep.target)}: everything is new",
                file=sys.stderr,
            )
        return _render_sweep(args, store, sweep, since)
    finally:
        store.close()


def _render_sweep(args: argparse.Namespace, store: Store, sweep: SweepRow, since: SweepRow | None) -> int:
    report = sweep_report(store, sweep, since)
    _write_reports(args, report, private=False)
    fail_on = None if args.fail_on == "none" else _severity(args.fail_on)
    return _exit_code(report, fail_on, args.fail_on_incomplete)


def _where(args: argparse.Namespace) -> int:
    path = args.db or default_db_path()
    if not path.is_file():
        raise UsageError(f"{path}: no sweep database here (run secretscan sweep --db {path} first)")
    store = Store(path)
    try:
        answer = where(store, args.needle, latest_only=not args.all_sweeps)
    finally:
        store.close()
    sys.stdout.write(render_where(answer, args.format))
    return EXIT_CLEAN if answer.images else EXIT_FINDINGS  # as grep: 1 when nothing ships it


def _vault_settings(args: argparse.Namespace, config: ScanConfig) -> VaultSettings:
    settings = config.vault
    if args.vault_kv:
        settings = replace(settings, kv=tuple(KvLocation.parse(k) for k in args.vault_kv))
    return settings


def _aws_settings(args: argparse.Namespace) -> AwsSecretsSettings:
    if args.aws_secrets_tag and args.aws_secrets is None:
        raise UsageError("--aws-secrets-tag selects secrets for --aws-secrets, which was not given")
    create_tags = []
    for text in getattr(args, "aws_tag", []):
        key, eq, value = text.partition("=")
        if not key or not eq:
            raise UsageError(f"--aws-tag {text!r}: expected KEY=VALUE")
        create_tags.append((key, value))
    return AwsSecretsSettings(
        prefix=args.aws_secrets or "",
        tags=tuple(TagSelector.parse(t) for t in args.aws_secrets_tag),
        kms_key_id=getattr(args, "kms_key_id", None),
        create_tags=tuple(create_tags),
    )


def _stores(args: argparse.Namespace, config: ScanConfig) -> list[ManagedStore]:
    """The stores findings are compared with, in the order their verdicts are shown: Vault, then
    AWS Secrets Manager."""
    aws = _aws_settings(args)
    stores: list[ManagedStore] = []
    if args.vault:
        stores.append(VaultStore(_vault_settings(args, config)))
    if args.aws_secrets is not None:
        stores.append(AwsSecretsStore(aws))
    return stores


def _destination(args: argparse.Namespace, config: ScanConfig) -> Destination:
    """``--to``: ``aws-secrets[:PREFIX]``, else a Vault KV location (``[vault:]MOUNT/PREFIX``)."""
    to = args.to or ""
    aws = _aws_settings(args)
    if to == "aws-secrets" or to.startswith("aws-secrets:"):
        prefix = to.partition(":")[2] if ":" in to else DEFAULT_MIGRATE_PREFIX
        return AwsSecretsDestination(replace(aws, migrate_prefix=prefix))
    if args.kms_key_id or args.aws_tag:
        raise UsageError("--kms-key-id and --aws-tag are for --to aws-secrets")
    settings = _vault_settings(args, config)
    if to:
        settings = replace(settings, migrate_to=KvLocation.parse(to.removeprefix("vault:")))
    return VaultDestination(settings.migrate_to, settings)


def _deferred_detection(config: ScanConfig) -> Callable[[], Detection]:
    """The run's detection stack, built the first time it is asked for (``Scanner.detection``)."""
    return functools.cache(functools.partial(Detection.for_config, config))


def _enrichers(args: argparse.Namespace, config: ScanConfig, detection: Callable[[], Detection]) -> list[Enricher]:
    enrichers: list[Enricher] = [StoreMatcher(store, detection().sealer.key) for store in _stores(args, config)]
    if getattr(args, "verify", False):
        options = config.verify
        if args.verify_provider:
            unknown = set(args.verify_provider) - VERIFIER_NAMES
            if unknown:
                raise UsageError(
                    f"--verify-provider: unknown {sorted(unknown)} (known: {', '.join(sorted(VERIFIER_NAMES))})"
                )
            options = replace(options, providers=frozenset(args.verify_provider))
        enrichers.append(Verifier(detection().ruleset, options))
    return enrichers


def _migrate(args: argparse.Namespace) -> int:
    deadline = Deadline.after(args.timeout)
    _check_outputs(args)
    config = _config(args)
    destination = _destination(args, config)
    detection = _deferred_detection(config)
    enrichers = _enrichers(args, config, detection)
    scanner = Scanner(
        config, detection, make_progress(args.quiet or args.no_progress), frozenset(), enrichers, deadline
    )
    report, secrets = scanner.scan_with_secrets(open_source(args.image, _source_options(args, deadline)))
    for error in report.errors:
        _print_error(error)
    plan = make_plan(report, destination)
    if args.action == "plan":
        text = render_plan_json(plan) if _plan_format(args) == "json" else render_markdown(plan)
        _emit(text, args.output, private=False)
        return EXIT_ERROR if report.errors else EXIT_CLEAN
    result = apply_plan(destination.writer(), plan, secrets, force=args.force, record=args.record)
    for entry in result.written:
        print(
            terminal_safe(
                f"{entry['action']:11} {entry['path']}"
                + (f" (version {entry['version']})" if entry.get("version") else "")
            )
        )
    for problem in result.problems:
        print(f"secretscan: {terminal_safe(problem)}", file=sys.stderr)
    return EXIT_ERROR if report.errors or result.problems else EXIT_CLEAN


def _source_options(args: argparse.Namespace, deadline: Deadline = NO_DEADLINE) -> SourceOptions:
    explicit = None
    if args.password_stdin:
        if not args.username:
            raise UsageError("--password-stdin needs --username (or SECRETSCAN_REGISTRY_USERNAME)")
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UsageError("--password-stdin: nothing was read from standard input")
        explicit = Credentials(args.username, password, origin="--username/--password-stdin")
    elif args.username and not os.environ.get("SECRETSCAN_REGISTRY_PASSWORD"):
        raise UsageError("--username needs --password-stdin: passwords are never taken from the command line")
    registry = RegistryOptions(
        insecure_registries=tuple(args.insecure_registry),
        tls_verify=args.tls_verify,
        platform=args.platform,
        all_platforms=getattr(args, "all_platforms", True),
        stall_seconds=args.stall_timeout,
        deadline=deadline,
    )
    return SourceOptions(
        default_keychain(explicit, ecr_hosts=args.ecr_registry), registry, getattr(args, "source", "registry")
    )


def _severity(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError as exc:
        raise UsageError(f"--fail-on: {exc}") from None


def _emit(text: str, output: Path | None, *, private: bool) -> None:
    """To stdout, or to ``output`` without following a symlink there (``safewrite``); private
    (``--show-secrets``) files are created mode 0600."""
    if output is None:
        sys.stdout.write(text)
        return
    write_file(output, text, mode=PRIVATE_MODE if private else PUBLIC_MODE)


def _check_outputs(args: argparse.Namespace) -> None:
    """Every file the command will write, checked before any work: a typo in ``-o`` or ``--also``
    fails in a second, not after a long scan."""
    paths = [path for _, path in parse_also(getattr(args, "also", []))]
    if getattr(args, "output", None) is not None:
        paths.append(args.output)
    if args.command in ("scan", "sweep", "report"):
        report_format(args.format, args.output)  # a format the file name contradicts fails now
        parse_severities(args.severity)
    if args.command == "migrate" and args.action == "apply":
        paths.append(args.record)
    for path in paths:
        check_output(path)


def _plan_format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    return "json" if args.output is not None and args.output.name.lower().endswith(".json") else "markdown"


def _print_error(text: str) -> None:
    """One ``secretscan: error:`` line on stderr; the text may quote an image or a server."""
    print(f"secretscan: error: {terminal_safe(text)}", file=sys.stderr)


def _exit_code(report: ScanReport, fail_on: Severity | None, fail_on_incomplete: bool) -> int:
    if report.errors:
        return EXIT_ERROR
    if fail_on is not None and any(f.severity >= fail_on for f in report.findings):
        return EXIT_FINDINGS
    if fail_on_incomplete and report.skipped:
        return EXIT_INCOMPLETE
    return EXIT_CLEAN

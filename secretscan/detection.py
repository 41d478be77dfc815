"""The detection stack of a run, built once: the rule pack, the known test keys (with the values
the rule pack itself publishes), the engine and the sealer.

Every entry point (``scan``, ``migrate``, ``baseline``, the sweep, its Dask workers, the Python
API) gets its stack here, so they cannot drift apart: a sweep worker whose stack differs from the
client's would cache results the client would not reproduce (``sweep.workers`` checks the profile).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from secretscan.config import ScanConfig
from secretscan.detect.artefacts import ArtefactStore, default_cache_dir
from secretscan.detect.checks import with_rule_examples
from secretscan.detect.engine import Engine
from secretscan.detect.knownkeys import KnownKeys
from secretscan.detect.rules import BUILTIN_RULES_DIR, RuleSet, load_rules
from secretscan.detect.seal import Sealer
from secretscan.verify import VERIFIER_NAMES


@dataclass(frozen=True)
class Detection:
    ruleset: RuleSet
    known: KnownKeys
    """The known test keys of the rule directories, and every value the rule pack publishes."""
    engine: Engine
    sealer: Sealer

    @classmethod
    def build(
        cls,
        rule_dirs: Sequence[Path],
        fingerprint_key: bytes,
        allow_values: Sequence[re.Pattern[str]] = (),
        *,
        hyperscan: bool = True,
        store: ArtefactStore | None = None,
    ) -> Detection:
        """``rule_dirs``: the user's rule directories (the built-in rules always come first);
        ``store``: where compiled artefacts are found and kept (default: shipped, then the user's cache)."""
        dirs = [BUILTIN_RULES_DIR, *rule_dirs]
        store = store or ArtefactStore(default_cache_dir())
        ruleset = load_rules(dirs, VERIFIER_NAMES, trusted=(BUILTIN_RULES_DIR,), store=store)
        base = Engine(ruleset, KnownKeys.load(dirs), hyperscan=hyperscan, store=store)
        base.prepare_scopes()  # shared by the twin below, and by every worker forked after this
        known = with_rule_examples(base, ruleset, dirs, store)
        return cls(ruleset, known, base.with_known(known), Sealer(fingerprint_key, known, tuple(allow_values)))

    @classmethod
    def for_config(cls, config: ScanConfig) -> Detection:
        return cls.build(
            config.rule_dirs,
            config.fingerprint_key,
            config.allowlist.regexes,
            hyperscan=config.hyperscan,
            store=ArtefactStore(config.cache_dir or default_cache_dir()),
        )

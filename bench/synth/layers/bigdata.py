"""The big-data layers: logs, CSV exports and binary data files that top the image up to its size.

They are planned last (after the other layers were written, so build.written is current) and
take whatever the target still needs, which is where a scanner's per-byte cost and memory show.
Secrets are planted deep inside, one straddling secretscan's 8 MiB chunk boundary.
"""

from __future__ import annotations

import math

import secretgen as gen

from ..contents import big_file, binary_blocks, csv_blocks, log_blocks
from ..model import Build, Files, LayerPlan
from ..params import BIG_FILE_MAX, BIG_FILE_MIN, CHUNK_BOUNDARY, SHARES
from ..values import uuid4


def big_files(build: Build) -> list[tuple[str, int]]:
    """(kind, size) of the big files: their share of the target, or what is left of it if more
    (so the image is never smaller than asked), split into 3+ files of at most BIG_FILE_MAX,
    kinds cycling log, csv, bin."""
    remaining = max(3 * BIG_FILE_MIN, int(build.target * SHARES["bigdata"]), build.target - build.written)
    n = max(3, math.ceil(remaining / BIG_FILE_MAX))
    each = max(BIG_FILE_MIN, remaining // n)
    return [(("log", "csv", "bin")[i % 3], each) for i in range(n)]


def layer_logs(build: Build) -> LayerPlan:
    """The big logs, with a secret straddling the 8 MiB chunk boundary and others deep inside."""
    build.big = big_files(build)
    logs = [size for kind, size in build.big if kind == "log"]
    files = Files(build, "bigdata")
    openai = gen.openai_key(build.secret_seed(3))
    ghp = gen.github_pat(build.secret_seed(4))
    token = gen.jwt(build.secret_seed(5))
    for i, size in enumerate(logs):
        path = "var/log/app/app.log" + (f".{i}" if i else "")
        plants: list[tuple[int, bytes]] = []
        if i == 0:
            line = f"2024-06-01T00:00:00.000Z ERROR [llm-client] upstream rejected key {openai} (model=gpt-4o)\n"
            start = CHUNK_BOUNDARY - line.index(openai) - len(openai) // 2
            plants.append((start, line.encode()))
            where = f"/{path} byte {start + line.index(openai)} (straddles the 8 MiB chunk boundary)"
            build.plant(openai, "openai.project-api-key", where)
            at = int(size * 0.61)
            line = f"2024-06-01T03:00:00.000Z DEBUG [sync] cloning with GITHUB_TOKEN={ghp}\n"
            plants.append((at, line.encode()))
            build.plant(ghp, "github.personal-access-token", f"/{path} byte {at + line.index(ghp)}")
        if i == len(logs) - 1:
            at = int(size * 0.87)
            user = uuid4(build.rng("jwt-user"))
            line = f"2024-06-01T09:00:00.000Z INFO [auth-proxy] issued session {token} for user {user}\n"
            plants.append((at, line.encode()))
            build.plant(token, "jwt.token", f"/{path} byte {at + line.index(token)}")
        files.gen(path, big_file(log_blocks, build.pools, size, plants, text=True))
    return LayerPlan("COPY logs/ /var/log/app/ # buildkit", files.specs)


def layer_data(build: Build) -> LayerPlan:
    """CSV exports (a Stripe key in a cell) and binary data files (a Slack token in a record)."""
    files = Files(build, "bigdata")
    stripe = gen.stripe_live_secret(build.secret_seed(6))
    slack = gen.slack_bot_token(build.secret_seed(7))
    csvs = [size for kind, size in build.big if kind == "csv"]
    bins = [size for kind, size in build.big if kind == "bin"]
    for i, size in enumerate(csvs):
        path, plants = f"srv/data/events-{i}.csv", []
        if i == 0:
            at = int(size * 0.45)
            row = f'{uuid4(build.rng("csv"))},2024-02-03T04:05:06Z,,,10.0.0.9,DE,0,EUR,SKU-00000,ok,,"migrated billing key {stripe}"\n'  # fmt: skip
            plants.append((at, row.encode()))
            build.plant(stripe, "stripe.secret-key", f"/{path} byte {at + row.index(stripe)}")
        files.gen(path, big_file(csv_blocks, build.pools, size, plants, text=True))
    for i, size in enumerate(bins):
        path, plants = f"srv/data/features-{i}.bin", []
        if i == 0:
            at = int(size * 0.7)
            rec = b"\x00\x00CFG\x00notify.slack=" + slack.encode() + b"\x00\x00"
            plants.append((at, rec))
            build.plant(slack, "slack.bot-token", f"/{path} byte {at + rec.index(slack.encode())} (binary)")
        files.gen(path, big_file(binary_blocks, build.pools, size, plants, text=False))
    return LayerPlan("COPY data/ /srv/data/ # buildkit", files.specs)

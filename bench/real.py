"""``make bench-real``: secretscan, trivy and Kingfisher on two realistic images (issue 14).

    python bench/real.py [--runs 3] [--images A,B] [--forms archive,oci-gzip,registry,daemon] [--only-build] [--rebuild]
                         [--timeout 1800]

Synthetic images (bench/make_image.py) show speed, but not the noise a scanner makes on what real
images carry: the files pip, npm and dpkg install, with their docs, tests and examples. So this
builds two images from real packages, pinned, from PyPI and npm, laid out exactly as the package
managers leave them (pip's dist-info/RECORD and .pyc, npm's node_modules/.package-lock.json and
file times, dpkg's database from the Debian base):

* A "debian-app": the Debian bookworm rootfs of `make install-test` (.tools/bookworm-python3.tar),
  then a pip layer, an npm layer, a small application;
* B "python-node-app": no OS layer (like a distroless image): pip, npm, application.

Each then gets "controls" in later layers: freshly generated secrets (tests/secretgen.py) where a
scanner that trusts package provenance could wrongly stay silent: an application file, a pip
package file modified after install (its RECORD hash no longer matches), a new file in a pip
package directory (not in RECORD), a file added under node_modules/<pkg>/ by a later layer, and in
A files in dpkg-owned directories that dpkg does not list. secretscan must report every control
as a finding and none as "published"; the exit code is 1 otherwise.

Images are docker-archive tars (the `docker save` layout of Docker 25+: an OCI layout with
manifest.json, uncompressed layers), assembled on the host from staging directories with no
daemon, each layer streamed to a file through sha256. They are built once under .bench/real/
(downloads cached in .bench/real/cache) and rebuilt only when their spec changes (package pins,
application, controls, the base rootfs, FORMAT); IMAGE.tar.planted.json beside each holds the
controls' values (fake, generated at build time) and where they are.

Each image is also scanned as an OCI layout with gzip layers (`skopeo copy`, under .bench/real/,
made again when the archive changes): what `docker save` gives from the containerd image store,
and what registries hold. A compressed layer cannot be cut or surveyed by seeking, so its package
records are read in a pass of their own before its scan; this row measures that path (Kingfisher
reads docker archives only: not run on it). `--forms archive` skips it.

That layout is also pushed to a registry on loopback (the tests' `servers.registry`: Debian's
docker-registry, no auth, plain HTTP) and scanned from there, as a CI gate or a sweep reads an
image: `docker://HOST/REF` against trivy's `--image-src remote --insecure` (secretscan holds the
compressed layers in memory as they arrive, within `max_held_blob_bytes`).

`--forms daemon` (not by default: it needs root, and loading the two images takes minutes) also
scans each image from a private dockerd (vfs storage, no network: the tests' `servers.dockerd`),
after `docker load` of its archive: `docker-daemon:REF` against trivy's `--image-src docker`, the
check before `docker push`. Both read the daemon's `docker save` stream, which dockerd takes
seconds to start sending; trivy spools it to a temporary file, secretscan holds the layers in
memory as they pass.

The three tools are run interleaved (for each run, each tool in turn), each run a fresh child
process from an empty working directory (no config file of the checkout is picked up): wall time
around Popen + os.wait4, CPU time (user + system) and ru_maxrss (the largest single process) from
wait4's rusage, and the peak summed PSS of the process tree sampled from /proc (a multi-process
tool's footprint). Figures shown: best wall and CPU of the runs, worst memory. trivy and Kingfisher
are peers for comparison only, installed by the Makefile into .bench/peers; every network feature
is switched off (trivy: offline, no DB or check updates, in-memory cache; Kingfisher: no
validation, no update check). When they are missing or fail, secretscan is still measured.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import secretgen as gen  # noqa: E402
from synth.tarwrite import HashingWriter  # noqa: E402 - bench/ is the script's directory

from secretscan.redact import fingerprint  # noqa: E402

WORK = REPO / ".bench" / "real"
CACHE = WORK / "cache"
BASE_ROOTFS = REPO / ".tools" / "bookworm-python3.tar"
PEERS = REPO / ".bench" / "peers"
PREFIX = "/usr/local"
SITE = "usr/local/lib/python3.11/site-packages"
FORMAT = 1  # bump when the way images are assembled changes: part of every spec hash
MB = 1e6
MiB = 1 << 20

# ----------------------------------------------------------------------------- the two images


@dataclass(frozen=True)
class Control:
    """A planted secret. Every control at one path goes into one file, in order; `append` keeps the
    content an earlier layer gave that path (a package file patched in place)."""

    name: str
    what: str  # the situation it stands for, as printed
    path: str  # absolute path in the image
    generator: str  # a tests/secretgen.py function
    template: str  # the text it adds, "{v}" being the value
    step: str  # created_by of the layer holding it
    append: bool = False


@dataclass(frozen=True)
class ImageDef:
    key: str
    name: str
    debian_base: bool
    python: tuple[str, ...]
    npm: tuple[tuple[str, str], ...]
    app: tuple[tuple[str, str], ...]  # (path under /app, text): nothing secret
    controls: tuple[Control, ...]
    interpreter: str  # the shebang pip's console scripts get in the image

    @property
    def archive(self) -> Path:
        return WORK / f"{self.name}.tar"

    @property
    def sidecar(self) -> Path:
        return WORK / f"{self.name}.tar.planted.json"

    @property
    def ref(self) -> str:
        """The name the archive tags its image with (and a daemon knows it by once loaded)."""
        return f"secretscan-bench/{self.name}:latest"

    def target(self, form: str, server: str = "") -> Path | str:
        """The image as the tools read it in ``form`` (``FORMS``); ``server``: the registry's
        host for ``REGISTRY``."""
        if form == DAEMON:
            return self.ref
        if form == REGISTRY:
            return f"{server}/{self.ref}"
        return self.archive if form == ARCHIVE else WORK / f"{self.name}.{form}"


ARCHIVE, OCI_GZIP, REGISTRY, DAEMON = "archive", "oci-gzip", "registry", "daemon"
FORMS = (ARCHIVE, OCI_GZIP, REGISTRY, DAEMON)
"""A docker-archive (uncompressed layers); the same image as an OCI layout with gzip layers; that
layout pushed to a registry on loopback; the same image loaded into a Docker daemon."""
DEFAULT_FORMS = (ARCHIVE, OCI_GZIP, REGISTRY)


APP_MODIFIED = "application file"
PIP_MODIFIED = "pip package file changed after install (RECORD hash differs)"
PIP_ADDED = "new file in a pip package directory (not in RECORD)"
NPM_ADDED = "file added under node_modules/<pkg>/ by a later layer"
DPKG_ADDED = "file in a dpkg-owned directory that dpkg does not list"

APP_A = (
    (
        "app.py",
        '"""Orders service: Flask + SQLAlchemy, settings from the environment."""\n'
        "import os\n\nfrom flask import Flask, jsonify\nfrom sqlalchemy import create_engine, text\n\n"
        "from config import settings\n\napp = Flask(__name__)\napp.config.from_object(settings)\n"
        'engine = create_engine(os.environ.get("DATABASE_URL", "sqlite:///orders.db"))\n\n\n'
        '@app.get("/healthz")\ndef healthz():\n    with engine.connect() as conn:\n'
        '        conn.execute(text("select 1"))\n    return jsonify(status="ok")\n',
    ),
    (
        "config/settings.py",
        '"""Settings read from the environment at start-up; nothing is baked into the image."""\n'
        "import os\n\nDEBUG = False\n"
        'SECRET_KEY = os.environ["FLASK_SECRET_KEY"]\n'
        'SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL", "sqlite:///orders.db")\n'
        'CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://redis:6379/0")\n',
    ),
    ("config/__init__.py", ""),
    (
        "config/default.json",
        json.dumps({"port": 3000, "logLevel": "info", "api": {"timeoutMs": 5000, "retries": 3}}, indent=2) + "\n",
    ),
    (
        "server.js",
        "// Next.js front end with a custom server; error reporting configured from the environment.\n"
        "const { createServer } = require('node:http');\nconst next = require('next');\n"
        "const Sentry = require('@sentry/node');\n\n"
        "Sentry.init({ dsn: process.env.SENTRY_DSN, tracesSampleRate: 0.1 });\n"
        "const app = next({ dev: false });\nconst handle = app.getRequestHandler();\n"
        "app.prepare().then(() => {\n  createServer((req, res) => handle(req, res)).listen(process.env.PORT || 3000);\n});\n",
    ),
)

APP_B = (
    (
        "main.py",
        '"""Notebook gateway API: FastAPI + MongoDB, credentials from the environment."""\n'
        "import os\n\nimport httpx\nfrom fastapi import FastAPI\nfrom pymongo import MongoClient\n\n"
        "from config import settings\n\napp = FastAPI(title=settings.APP_NAME)\n"
        'mongo = MongoClient(os.environ.get("MONGO_URL", "mongodb://mongo:27017"))\n\n\n'
        '@app.get("/healthz")\nasync def healthz() -> dict[str, str]:\n'
        "    async with httpx.AsyncClient(timeout=2) as client:\n"
        '        await client.get(settings.UPSTREAM_URL)\n    return {"status": "ok"}\n',
    ),
    (
        "config/settings.py",
        '"""Settings read from the environment at start-up."""\nimport os\n\n'
        'APP_NAME = "notebook-gateway"\n'
        'UPSTREAM_URL = os.environ.get("UPSTREAM_URL", "http://jupyter:8888/api")\n'
        'SLACK_CHANNEL = os.environ.get("SLACK_CHANNEL", "#alerts")\n',
    ),
    ("config/__init__.py", ""),
    ("config/default.json", json.dumps({"port": 4000, "graphqlPath": "/graphql", "cors": ["*"]}, indent=2) + "\n"),
    (
        "server.js",
        "// GraphQL front end: Apollo Server over Knex; connection settings from the environment.\n"
        "const { ApolloServer } = require('@apollo/server');\n"
        "const { startStandaloneServer } = require('@apollo/server/standalone');\n"
        "const knex = require('knex')({ client: 'pg', connection: process.env.DATABASE_URL });\n\n"
        "const typeDefs = `type Query { health: String }`;\n"
        "const resolvers = { Query: { health: async () => (await knex.raw('select 1')) && 'ok' } };\n"
        "startStandaloneServer(new ApolloServer({ typeDefs, resolvers }), { listen: { port: 4000 } });\n",
    ),
)

PATCH_STEP = "RUN /bin/sh -c python3 tools/patch_site_packages.py # buildkit"
IMAGES = {
    "A": ImageDef(
        key="A",
        name="debian-app",
        debian_base=True,
        python=(
            "flask==3.1.3",
            "sqlalchemy==2.1.9",
            "alembic==1.20.1",
            "celery==5.7.0",
            "oauthlib==4.0.1",
            "requests-oauthlib==2.0.0",
            "kubernetes==37.0.1",
            "ansible-core==2.19.14",
            "psycopg2-binary==2.9.13",
            "gunicorn==27.0.1",
        ),
        npm=(
            ("prettier", "3.10.1"),
            ("@sentry/node", "11.12.0"),
            ("next", "16.5.0"),
            ("react", "19.3.1"),
            ("react-dom", "19.3.1"),
            ("typeorm", "1.1.3"),
            ("reflect-metadata", "0.2.2"),
            ("mysql2", "3.25.0"),
            ("ioredis", "5.9.2"),
            ("koa", "3.3.0"),
        ),
        app=APP_A,
        controls=(
            Control(
                "app-env-aws-key-id",
                APP_MODIFIED,
                "/app/.env",
                "aws_access_key_id",
                "AWS_ACCESS_KEY_ID={v}\n",
                "COPY .env /app/.env # buildkit",
            ),
            Control(
                "app-env-aws-secret",
                APP_MODIFIED,
                "/app/.env",
                "aws_secret_access_key",
                "AWS_SECRET_ACCESS_KEY={v}\nAWS_DEFAULT_REGION=eu-west-1\n",
                "COPY .env /app/.env # buildkit",
            ),
            Control(
                "pip-modified-requests",
                PIP_MODIFIED,
                f"/{SITE}/requests/__init__.py",
                "slack_bot_token",
                '\n_SLACK_BOT_TOKEN = "{v}"  # ops: post retries to #alerts\n',
                PATCH_STEP,
                append=True,
            ),
            Control(
                "pip-new-flask-local-settings",
                PIP_ADDED,
                f"/{SITE}/flask/local_settings.py",
                "stripe_live_secret",
                '"""Site overrides."""\nSTRIPE_SECRET_KEY = "{v}"\n',
                PATCH_STEP,
            ),
            Control(
                "dpkg-dir-python3-dist-packages",
                DPKG_ADDED,
                "/usr/lib/python3/dist-packages/deploy_credentials.py",
                "gitlab_pat",
                'GITLAB_DEPLOY_TOKEN = "{v}"\n',
                PATCH_STEP,
            ),
            Control(
                "dpkg-dir-etc-ssl-private",
                DPKG_ADDED,
                "/etc/ssl/private/app-server.key",
                "ec_private_key_pem",
                "{v}",
                "COPY certs/app-server.key /etc/ssl/private/ # buildkit",
            ),
            Control(
                "npm-added-typeorm-config",
                NPM_ADDED,
                "/app/node_modules/typeorm/config.js",
                "github_pat",
                'module.exports = {{ migrationsRepoToken: "{v}" }};\n',
                "COPY vendor/typeorm-config.js /app/node_modules/typeorm/config.js # buildkit",
            ),
        ),
        interpreter="/usr/bin/python3",
    ),
    "B": ImageDef(
        key="B",
        name="python-node-app",
        debian_base=False,
        python=(
            "fastapi==0.165.0",
            "pydantic==2.14.4",
            "httpx==0.29.0",
            "uvicorn==0.55.0",
            "redis==8.2.0",
            "pymongo==4.20.1",
            "snowflake-connector-python==5.2.0",
            "openai==3.63.0",
            "google-api-python-client==2.202.0",
            "slack-sdk==3.48.0",
            "jupyter-server==2.21.1",
        ),
        npm=(
            ("@angular/core", "22.2.6"),
            ("@angular/common", "22.2.6"),
            ("@angular/compiler", "22.2.6"),
            ("@angular/platform-browser", "22.2.6"),
            ("@angular/cli", "22.2.7"),
            ("rxjs", "7.8.2"),
            ("zone.js", "0.16.3"),
            ("vue", "3.5.47"),
            ("graphql", "16.15.0"),
            ("@apollo/server", "5.5.1"),
            ("aws-amplify", "6.22.1"),
            ("firebase", "13.2.0"),
            ("knex", "3.3.0"),
            ("sequelize", "6.37.8"),
            ("@slack/web-api", "8.2.0"),
        ),
        app=APP_B,
        controls=(
            Control(
                "app-settings-stripe",
                APP_MODIFIED,
                "/app/config/settings.py",
                "stripe_live_secret",
                'STRIPE_API_KEY = "{v}"\n',
                "COPY config/settings.py /app/config/settings.py # buildkit",
                append=True,
            ),
            Control(
                "pip-modified-openai-constants",
                PIP_MODIFIED,
                f"/{SITE}/openai/_constants.py",
                "openai_key",
                '\nDEFAULT_API_KEY = "{v}"\n',
                PATCH_STEP,
                append=True,
            ),
            Control(
                "pip-new-fastapi-local-settings",
                PIP_ADDED,
                f"/{SITE}/fastapi/local_settings.py",
                "vault_token",
                'VAULT_TOKEN = "{v}"\n',
                PATCH_STEP,
            ),
            Control(
                "npm-added-knex-config",
                NPM_ADDED,
                "/app/node_modules/knex/config.js",
                "github_fine_grained",
                'module.exports = {{ registryToken: "{v}" }};\n',
                "COPY vendor/knex-config.js /app/node_modules/knex/config.js # buildkit",
            ),
        ),
        interpreter="/usr/local/bin/python3",
    ),
}


def spec_hash(img: ImageDef) -> str:
    """What the cached image was built from: a change here rebuilds it (and plants new values)."""
    spec: dict[str, Any] = {"format": FORMAT, "image": asdict(img)}
    if img.debian_base:
        st = BASE_ROOTFS.stat()
        spec["base"] = [st.st_size, int(st.st_mtime)]
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


# ----------------------------------------------------------------------------- installing packages


def _run_quiet(cmd: Sequence[str], cwd: Path | None = None) -> None:
    """Run an installer; its output only matters when it fails."""
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-25:]
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {' '.join(cmd[:6])} ...\n" + "\n".join(tail))


def pip_install(root: Path, packages: Sequence[str], interpreter: str) -> None:
    """`pip install --root ROOT --prefix /usr/local`, as an image build runs it, then what a build
    inside the image would have differed in: console scripts name the image's interpreter (their
    RECORD rows follow), and .pyc files name their source by its path in the image."""
    _run_quiet(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--ignore-installed",
         "--no-warn-script-location", "--root", str(root), "--prefix", PREFIX, "--cache-dir", str(CACHE / "pip"),
         *packages]
    )  # fmt: skip
    site = root / SITE
    rewritten: dict[Path, bytes] = {}
    bin_dir = root / PREFIX.lstrip("/") / "bin"
    for script in sorted(bin_dir.iterdir()) if bin_dir.is_dir() else []:
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        first, sep, rest = data.partition(b"\n")
        if first.startswith(b"#!") and b"python" in first and first[2:].strip() != interpreter.encode():
            new = b"#!" + interpreter.encode() + sep + rest
            script.write_bytes(new)
            rewritten[script.resolve()] = new
    if rewritten:
        for record in site.glob("*.dist-info/RECORD"):
            _update_record(record, site, rewritten)
    # pip compiled with the staging path as each .pyc's source name; recompile naming the image path
    subprocess.run(
        [sys.executable, "-m", "compileall", "-qq", "-f", "-j", "0", "-s", str(root), "-p", "/", str(site)],
        check=False,
    )


def _update_record(record: Path, site: Path, rewritten: dict[Path, bytes]) -> None:
    with open(record, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    changed = False
    for row in rows:
        if row and (site / row[0]).resolve() in rewritten:
            data = rewritten[(site / row[0]).resolve()]
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            row[1:3] = [f"sha256={digest}", str(len(data))]
            changed = True
    if changed:
        with open(record, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)  # pip's own dialect: excel, CRLF


def npm_install(app_dir: Path, packages: Sequence[tuple[str, str]]) -> None:
    """`npm install` in /app from a package.json, as an image build runs it (no install scripts)."""
    app_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"name": "app", "version": "1.0.0", "private": True, "dependencies": dict(packages)}
    (app_dir / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    _run_quiet(
        ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error", "--prefer-offline",
         "--cache", str(CACHE / "npm")],
        cwd=app_dir,
    )  # fmt: skip


def resolved_packages(py_root: Path, app_dir: Path) -> dict[str, Any]:
    """What the installers actually put there (top-level pins plus their dependencies)."""
    python = []
    for dist in sorted((py_root / SITE).glob("*.dist-info")):
        name, _, version = dist.name[: -len(".dist-info")].partition("-")
        python.append(f"{name}=={version}")
    lock = json.loads((app_dir / "node_modules" / ".package-lock.json").read_text())
    npm = sorted(p for p in lock.get("packages", {}) if p)
    return {"python": python, "npm_count": len(npm)}


# ----------------------------------------------------------------------------- writing layers


@dataclass
class LayerFile:
    created_by: str
    path: Path  # the uncompressed layer tar
    digest: str  # its sha256 (= diff_id: docker save stores layers uncompressed)
    size: int
    files: int  # regular files in it
    temporary: bool = True


def _walk(root: Path, rel: str = "") -> Iterator[tuple[str, str]]:
    """(archive name, host path) of everything under root, sorted, parents first, links not followed."""
    with os.scandir(os.path.join(root, rel) if rel else root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        name = f"{rel}/{entry.name}" if rel else entry.name
        yield name, entry.path
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(root, name)


def _as_root(ti: tarfile.TarInfo) -> tarfile.TarInfo:
    """Owned by root, whole-second mtimes (as docker writes layer tars: no PAX time records)."""
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    ti.mtime = int(ti.mtime)
    return ti


def write_tree_layer(root: Path, out: Path, created_by: str) -> LayerFile:
    """A layer tar of a staging directory, streamed: modes, mtimes and links as they are on disk."""
    files = 0
    with open(out, "wb") as raw:
        sink = HashingWriter(raw)
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT, bufsize=MiB) as tf:  # type: ignore[call-overload]
            for name, path in _walk(root):
                ti = _as_root(tf.gettarinfo(path, arcname=name))
                if ti.isreg():
                    files += 1
                    with open(path, "rb") as f:
                        tf.addfile(ti, f)
                else:
                    tf.addfile(ti)
    return LayerFile(created_by, out, sink.digest(), sink.size, files)


def write_files_layer(files: dict[str, bytes], out: Path, created_by: str, mtime: int) -> LayerFile:
    """A small layer as COPY/RUN would leave it: the files and their parent directories, fresh mtimes."""
    dirs = sorted({"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)})
    with open(out, "wb") as raw:
        sink = HashingWriter(raw)
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
            for d in dirs:
                ti = tarfile.TarInfo(d)
                ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, mtime
                tf.addfile(_as_root(ti))
            for path, data in sorted(files.items()):
                ti = tarfile.TarInfo(path)
                ti.size, ti.mode, ti.mtime = len(data), 0o600 if path.endswith(".key") else 0o644, mtime
                tf.addfile(_as_root(ti), io.BytesIO(data))
    return LayerFile(created_by, out, sink.digest(), sink.size, len(files))


def file_layer(path: Path, created_by: str) -> LayerFile:
    """An existing layer tar used as is (the Debian rootfs)."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(MiB):
            sha.update(block)
    with tarfile.open(path) as tf:
        files = sum(1 for m in tf if m.isreg())
    return LayerFile(created_by, path, "sha256:" + sha.hexdigest(), path.stat().st_size, files, temporary=False)


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def write_docker_archive(out: Path, layers: Sequence[LayerFile], config: dict[str, Any], ref: str) -> None:
    """`docker save` as Docker 25+ writes it: an OCI layout (index.json, oci-layout, blobs) plus
    manifest.json, layers uncompressed; written to OUT.partial, layer blobs streamed, then renamed."""
    cfg = _json_bytes(config)
    cfg_digest = "sha256:" + hashlib.sha256(cfg).hexdigest()
    layer_mt = "application/vnd.oci.image.layer.v1.tar"
    manifest = _json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_digest, "size": len(cfg)},
            "layers": [{"mediaType": layer_mt, "digest": ly.digest, "size": ly.size} for ly in layers],
        }
    )
    man_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    name, tag = ref.rsplit(":", 1)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": man_digest,
                "size": len(manifest),
                "annotations": {
                    "io.containerd.image.name": f"docker.io/{name}:{tag}",
                    "org.opencontainers.image.ref.name": tag,
                },
            }
        ],
    }
    blob = "blobs/sha256/"
    members: dict[str, bytes | Path] = {
        blob + cfg_digest[7:]: cfg,
        blob + man_digest[7:]: manifest,
        "index.json": _json_bytes(index),
        "oci-layout": _json_bytes({"imageLayoutVersion": "1.0.0"}),
        "manifest.json": _json_bytes(
            [{"Config": blob + cfg_digest[7:], "RepoTags": [ref], "Layers": [blob + ly.digest[7:] for ly in layers]}]
        ),
    }
    for ly in layers:
        members[blob + ly.digest[7:]] = ly.path
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("blobs", "blobs/sha256"):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(ti)
        for member, src in sorted(members.items()):
            ti = tarfile.TarInfo(member)
            ti.mode = 0o644
            if isinstance(src, Path):
                ti.size = src.stat().st_size
                with open(src, "rb") as f:
                    tf.addfile(ti, f)
            else:
                ti.size = len(src)
                tf.addfile(ti, io.BytesIO(src))
    os.replace(partial, out)


# ----------------------------------------------------------------------------- building an image


def _line_of(text: str, value: str) -> int:
    return text[: text.index(value)].count("\n") + 1


def plant_controls(
    img: ImageDef, originals: Sequence[Path]
) -> tuple[dict[str, dict[str, bytes]], dict[str, dict[str, Any]]]:
    """Fresh values for the controls: the files of each control layer (by step) and the sidecar records.
    `originals` are staging roots, later ones overriding earlier, that appended controls start from."""
    layers: dict[str, dict[str, str]] = {}
    records: dict[str, dict[str, Any]] = {}
    for c in img.controls:
        files = layers.setdefault(c.step, {})
        if c.path not in files:
            files[c.path] = ""
            if c.append:
                found = [r / c.path.lstrip("/") for r in originals if (r / c.path.lstrip("/")).is_file()]
                if not found:
                    raise SystemExit(f"control {c.name}: {c.path} was not installed by an earlier layer")
                files[c.path] = found[-1].read_text()
                if not files[c.path].endswith("\n"):
                    files[c.path] += "\n"
        value = getattr(gen, c.generator)()
        files[c.path] += c.template.format(v=value)
        records[c.name] = {"value": value, "what": c.what, "path": c.path, "step": c.step, "kind": c.generator}
    for c in img.controls:  # a control added to a package directory needs the package to be there
        parent = c.path.rsplit("/", 1)[0].lstrip("/")
        if c.what in (PIP_ADDED, NPM_ADDED) and not any((r / parent).is_dir() for r in originals):
            raise SystemExit(f"control {c.name}: {parent} is not installed")
    for rec in records.values():
        rec["line"] = _line_of(layers[rec["step"]][rec["path"]], rec["value"])
    encoded = {step: {p.lstrip("/"): t.encode() for p, t in files.items()} for step, files in layers.items()}
    return encoded, records


def build(img: ImageDef) -> dict[str, Any]:
    """Install, assemble and plant; return the sidecar (also written beside the archive)."""
    t0 = time.monotonic()
    stage = WORK / "staging" / img.name
    shutil.rmtree(stage, ignore_errors=True)
    py_root, npm_root, app_root = stage / "pip", stage / "npm", stage / "app"
    print(f"== building {img.key} {img.name}: pip install {len(img.python)} pins", flush=True)
    pip_install(py_root, img.python, img.interpreter)
    print(f"   npm install {len(img.npm)} pins", flush=True)
    npm_install(npm_root / "app", img.npm)
    for rel, text in img.app:
        path = app_root / "app" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    pins = " ".join(img.python)
    steps: list[tuple[str, Path]] = [
        (f"RUN /bin/sh -c pip install --no-cache-dir {pins} # buildkit", py_root),
        ("RUN /bin/sh -c npm install --ignore-scripts --no-audit --no-fund # buildkit", npm_root),
        ("COPY . /app # buildkit", app_root),
    ]
    control_files, records = plant_controls(img, [py_root, npm_root, app_root])
    now = int(time.time())
    tmp = WORK / f".{img.name}.layers"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    layers: list[LayerFile] = []
    try:
        if img.debian_base:
            layers.append(file_layer(BASE_ROOTFS, "/bin/sh -c #(nop) ADD file:bookworm-python3.tar in / "))
        for created_by, root in steps:
            layers.append(write_tree_layer(root, tmp / f"{len(layers)}.tar", created_by))
        for step, files in control_files.items():
            layers.append(write_files_layer(files, tmp / f"{len(layers)}.tar", step, now))
        for rec in records.values():
            rec["layer"] = next(i for i, ly in enumerate(layers) if ly.created_by == rec["step"])
        for i, ly in enumerate(layers):
            print(f"   layer {i}: {ly.files:7d} files {ly.size / MB:8.1f} MB  {ly.created_by[:80]}", flush=True)
        created = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        history: list[dict[str, Any]] = [{"created": created, "created_by": ly.created_by} for ly in layers]
        for line in ("ENV NODE_ENV=production", "WORKDIR /app", 'CMD ["node" "server.js"]'):
            history.append({"created": created, "created_by": f"/bin/sh -c #(nop) {line}", "empty_layer": True})
        config = {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NODE_ENV=production"],
                "WorkingDir": "/app",
                "Cmd": ["node", "server.js"],
            },
            "rootfs": {"type": "layers", "diff_ids": [ly.digest for ly in layers]},
            "history": history,
        }
        write_docker_archive(img.archive, layers, config, img.ref)
        sidecar = {
            "spec_hash": spec_hash(img),
            "image": img.name,
            "built": created,
            "uncompressed_bytes": sum(ly.size for ly in layers),
            "files": sum(ly.files for ly in layers),
            "layers": [
                {"index": i, "created_by": ly.created_by, "diff_id": ly.digest, "size": ly.size, "files": ly.files}
                for i, ly in enumerate(layers)
            ],
            "pins": {"python": list(img.python), "npm": dict(img.npm)},
            "resolved": resolved_packages(py_root, npm_root / "app"),
            "controls": records,
            "build_seconds": round(time.monotonic() - t0, 1),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    img.sidecar.write_text(json.dumps(sidecar, indent=2) + "\n")
    shutil.rmtree(stage, ignore_errors=True)
    if not any(stage.parent.iterdir()):
        stage.parent.rmdir()
    print(f"   wrote {img.archive.relative_to(REPO)} in {sidecar['build_seconds']} s", flush=True)
    return sidecar


def ensure_built(img: ImageDef, rebuild: bool) -> dict[str, Any] | None:
    if img.debian_base and not BASE_ROOTFS.exists():
        print(f"!! {img.key} {img.name}: the Debian base {BASE_ROOTFS.relative_to(REPO)} is missing "
              "(make install-test builds it, as root); skipped")  # fmt: skip
        return None
    if not rebuild and img.archive.exists() and img.sidecar.exists():
        sidecar: dict[str, Any] = json.loads(img.sidecar.read_text())
        if sidecar.get("spec_hash") == spec_hash(img):
            return sidecar
    return build(img)


def ensure_layout(img: ImageDef) -> Path | None:
    """The image as an OCI layout with gzip layers (skopeo compresses them), made from the archive
    when it is missing or older; None when skopeo is not there or fails."""
    layout = img.target(OCI_GZIP)
    stamp = layout / "made-from"
    made_from = f"{img.archive.stat().st_mtime_ns} {img.archive.stat().st_size}"
    if stamp.exists() and stamp.read_text() == made_from:
        return layout
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        print(f"!! skopeo not found (make install-system installs it): {img.key} not scanned as an OCI layout")
        return None
    shutil.rmtree(layout, ignore_errors=True)
    copy = [skopeo, "copy", "-q", f"docker-archive:{img.archive}", f"oci:{layout}:{img.name}"]
    proc = subprocess.run(copy, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        print(f"!! skopeo could not make an OCI layout of {img.key}: {_safe(proc.stderr.strip())}")
        return None
    stamp.write_text(made_from)
    return layout


# ----------------------------------------------------------------------------- measuring processes


@dataclass
class Run:
    wall: float
    cpu: float  # user + system of the process and its waited-for descendants
    maxrss: int  # bytes: the largest single process (wait4's ru_maxrss)
    pss: int  # bytes: peak of the summed PSS of the process tree, sampled
    status: int


class TreeSampler(threading.Thread):
    """Peak summed PSS of a process and its descendants, from /proc every `interval` seconds.
    Descendants are found by parent pid over /proc (…/task/*/children is not on every kernel)."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, sum(self._pss(p) for p in self._tree()))
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
        tree, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo += children.get(pid, [])
        return tree

    @staticmethod
    def _pss(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        return int(line.split()[1]) * 1024
        except (OSError, IndexError, ValueError):
            pass
        return 0


def measure(cmd: Sequence[str], out: Path, err: Path, cwd: Path, env: dict[str, str], timeout: float) -> Run:
    """One run of `cmd` as a fresh child process in its own process group (killed on timeout)."""
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=stdout, stderr=stderr, cwd=cwd, env=env, start_new_session=True)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        timer.cancel()
        sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, sampler.peak, proc.returncode)


# ----------------------------------------------------------------------------- the tools


@dataclass
class Tool:
    name: str
    cmd: list[str]  # the image path is appended by `command`
    ok: tuple[int, ...]
    runs: list[Run] = field(default_factory=list)
    failed: str = ""

    def command(self, image: Path | str) -> list[str]:
        return [part.replace("{image}", str(image)) for part in self.cmd]


SEARCH_PACKAGES = "ss-packages"
"""secretscan with ``--search-packages``: verified package content searched with every provider
rule, to list what it publishes (by default with the self-identifying rules only, which changes
no finding and lists the values those find)."""


def find_tools(only_secretscan: bool, form: str = ARCHIVE, docker_host: str = "") -> list[Tool]:
    """The tools for ``form``; ``docker_host``: the daemon's address, for ``DAEMON``."""
    transport = {ARCHIVE: "docker-archive:", OCI_GZIP: "oci:", REGISTRY: "docker://", DAEMON: "docker-daemon:"}[form]
    scan = [sys.executable, "-m", "secretscan", "scan", transport + "{image}", "-f", "json", "-q",
            "--fail-on", "none", "--show-secrets"]  # fmt: skip
    tools = [Tool("secretscan", scan, (0,)), Tool(SEARCH_PACKAGES, [*scan, "--search-packages"], (0,))]
    if only_secretscan:
        return tools
    trivy = PEERS / "bin" / "trivy"
    if _works([str(trivy), "--version"]):
        tools.append(
            Tool(
                "trivy",
                [str(trivy), "image", *_trivy_source(form, docker_host), "--scanners", "secret", "--format", "json", "-q",
                 "--cache-backend", "memory", "--cache-dir", str(WORK / "run" / "trivy-cache"), "--skip-db-update",
                 "--skip-java-db-update", "--offline-scan", "--skip-check-update", "--skip-version-check",
                 "--disable-telemetry", "--timeout", "60m"],
                (0,),
            )
        )  # fmt: skip
    else:
        print(f"!! trivy not found or not runnable in {PEERS.relative_to(REPO)} (the Makefile installs it): skipped")
    if form != ARCHIVE:
        return tools  # Kingfisher reads docker archives only
    kingfisher = _kingfisher_binary()
    if kingfisher and _works([kingfisher, "--version"]):
        tools.append(
            Tool(
                "kingfisher",
                [kingfisher, "scan", "docker", "--archive", "{image}", "--no-validate", "--no-update-check",
                 "--no-limits", "--format", "json", "-q"],
                (0, 200, 205),  # 200: findings, 205: validated findings
            )
        )  # fmt: skip
    else:
        print(f"!! Kingfisher not found or not runnable in {PEERS.relative_to(REPO)}: skipped")
    return tools


def _trivy_source(form: str, docker_host: str) -> list[str]:
    if form == DAEMON:
        return ["--image-src", "docker", "--docker-host", docker_host, "{image}"]
    if form == REGISTRY:  # plain HTTP on loopback, as secretscan takes it
        return ["--image-src", "remote", "--insecure", "{image}"]
    return ["--input", "{image}"]


def _works(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _kingfisher_binary() -> str | None:
    """The binary kingfisher-bin ships (its console script is a Python wrapper: not what we time)."""
    python = PEERS / "bin" / "python"
    if not python.exists():
        return None
    try:
        out = subprocess.run(
            [str(python), "-c", "import kingfisher; print(kingfisher.get_binary_path())"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def scan_image(
    img: ImageDef, tools: list[Tool], runs: int, timeout: float, form: str = ARCHIVE, server: str = ""
) -> dict[str, Path]:
    """Interleaved runs of the image in ``form``; returns each tool's report of its last good run.
    ``server``: the daemon's address for ``DAEMON``, the registry's host for ``REGISTRY``."""
    run_dir = WORK / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECRETSCAN_")}
    if form == DAEMON:
        env["DOCKER_HOST"] = server
    reports: dict[str, Path] = {}
    for tool in tools:
        tool.runs, tool.failed = [], ""
    for n in range(runs):
        for tool in tools:
            if tool.failed:
                continue
            shutil.rmtree(run_dir, ignore_errors=True)
            (run_dir / "tmp").mkdir(parents=True)
            out, err = WORK / f"{img.name}.{form}.{tool.name}.json", WORK / f"{img.name}.{form}.{tool.name}.stderr"
            target = img.target(form, server)
            r = measure(tool.command(target), out, err, run_dir, {**env, "TMPDIR": str(run_dir / "tmp")}, timeout)
            if r.status not in tool.ok:
                tail = err.read_bytes()[-1500:].decode(errors="replace")
                tool.failed = (
                    f"exit {r.status} on run {n + 1}: {_safe(tail.strip().splitlines()[-1] if tail.strip() else '')}"
                )
                print(f"!! {tool.name} on {img.name}: {tool.failed}", flush=True)
                continue
            tool.runs.append(r)
            reports[tool.name] = out
            print(f"   run {n + 1} {tool.name:<10} {r.wall:7.1f} s wall {r.cpu:7.1f} s cpu", flush=True)
    shutil.rmtree(run_dir, ignore_errors=True)
    return reports


# ----------------------------------------------------------------------------- reading the reports


def _safe(text: str, limit: int = 100, tail: bool = True) -> str:
    """Text from an image or a tool, made safe for a terminal and cut to `limit` characters,
    keeping its end (paths) or, with tail=False, its start."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(out) <= limit:
        return out
    return "…" + out[-(limit - 1) :] if tail else out[: limit - 1] + "…"


def _squash(text: str) -> str:
    return "".join(text.split())


def _same_value(candidate: str, value: str) -> bool:
    """A reported value is the planted one (tools may cut a PEM or keep its newlines differently)."""
    a, b = _squash(candidate), _squash(value)
    return len(a) >= 16 and (a in b or b in a)


@dataclass
class Verdict:
    """What one tool said about the controls (name -> how found, or '' when not), and its counts."""

    found: dict[str, str]
    counts: str
    total: int
    listed: list[str] = field(default_factory=list)  # peers' findings, one line each, no secret


def secretscan_verdict(report: dict[str, Any], controls: dict[str, dict[str, Any]]) -> tuple[Verdict, list[str]]:
    findings = report.get("findings", [])
    published = report.get("known_test_keys", [])
    found: dict[str, str] = {}
    bad: list[str] = []
    for name, c in controls.items():
        hit = next((f for f in findings if f.get("secret") and _same_value(f["secret"], c["value"])), None)
        found[name] = "found" if hit else ""
        fp = fingerprint(c["value"])
        as_published = [
            k for k in published
            if k.get("fingerprint") == fp or any(loc.get("path") == c["path"] for loc in k.get("locations", []))
        ]  # fmt: skip
        if as_published:
            found[name] = (found[name] + "+PUBLISHED").lstrip("+")
            bad.append(f"{name} listed as published ({_safe(as_published[0].get('source', '?'), 60)})")
        elif not hit:
            bad.append(f"{name} missed")
    return Verdict(found, _counts(Counter(f.get("severity", "?") for f in findings)), len(findings)), bad


def trivy_verdict(report: dict[str, Any], controls: dict[str, dict[str, Any]]) -> Verdict:
    """trivy redacts what it matched, so a control counts as found by file path and overlapping lines."""
    secrets = [(r.get("Target", ""), s) for r in report.get("Results") or [] for s in r.get("Secrets") or []]
    found = {}
    for name, c in controls.items():
        first, last = c["line"], c["line"] + c["value"].rstrip("\n").count("\n")
        hit = any(
            "/" + target.lstrip("/") == c["path"] and s.get("StartLine", 0) <= last and s.get("EndLine", 0) >= first
            for target, s in secrets
        )
        found[name] = "by path:line" if hit else ""
    listed = [
        f"{s.get('Severity', '?').lower():<8} {s.get('RuleID', '?')}  {target}:{s.get('StartLine', '')}"
        for target, s in secrets
    ]
    return Verdict(found, _counts(Counter(s.get("Severity", "?").lower() for _, s in secrets)), len(secrets), listed)


def kingfisher_verdict(report: dict[str, Any], controls: dict[str, dict[str, Any]]) -> Verdict:
    """Kingfisher reports the matched text (`snippet`): by value, else by path and line."""
    rules = [f.get("rule", {}).get("id", "?") for f in report.get("findings", [])]
    hits = [f.get("finding", {}) for f in report.get("findings", [])]
    found = {}
    for name, c in controls.items():
        how = ""
        for h in hits:
            if h.get("snippet") and _same_value(h["snippet"], c["value"]):
                how = "by value"
                break
            path = "/" + str(h.get("path", "")).rpartition(" | ")[2].lstrip("/")
            if path == c["path"] and h.get("line") == c["line"]:
                how = "by path:line"
        found[name] = how
    listed = [
        f"{h.get('confidence', '?'):<8} {rule}  /{str(h.get('path', '')).rpartition(' | ')[2].lstrip('/')}:{h.get('line', '')}"
        for rule, h in zip(rules, hits, strict=True)
    ]
    return Verdict(found, _counts(Counter(f"{h.get('confidence', '?')}-conf" for h in hits)), len(hits), listed)


def _counts(counter: Counter[str]) -> str:
    order = ["critical", "high", "medium", "low", "high-conf", "medium-conf", "low-conf"]
    keys = sorted(counter, key=lambda k: order.index(k) if k in order else len(order))
    return ", ".join(f"{counter[k]} {k}" for k in keys) or "none"


# ----------------------------------------------------------------------------- the table


def _fmt_mb(n: float) -> str:
    return f"{n / MB:6.0f} MB"


def report_image(
    img: ImageDef, sidecar: dict[str, Any], tools: list[Tool], reports: dict[str, Path], form: str = ARCHIVE
) -> list[str]:
    """Print the figures of one image; return what secretscan got wrong about the controls."""
    controls: dict[str, dict[str, Any]] = sidecar["controls"]
    shape = {
        ARCHIVE: "docker-archive",
        OCI_GZIP: "OCI layout, gzip layers",
        REGISTRY: "registry on loopback, gzip layers",
        DAEMON: "Docker daemon",
    }[form]
    print(
        f"\n== {img.key} {img.name} ({shape}): {sidecar['uncompressed_bytes'] / MB:.0f} MB uncompressed, "
        f"{len(sidecar['layers'])} layers, {sidecar['files']} files; {len(sidecar['resolved']['python'])} "
        f"Python distributions, {sidecar['resolved']['npm_count']} npm packages; built {sidecar['built']}"
    )
    verdicts: dict[str, Verdict] = {}
    bad: list[str] = []
    ss_reports: dict[str, dict[str, Any]] = {}
    for tool in tools:
        if tool.name not in reports:
            continue
        try:
            data = json.loads(reports[tool.name].read_text() or "{}")
        except json.JSONDecodeError as e:
            tool.failed = f"unreadable JSON report ({e})"
            continue
        if tool.name in ("secretscan", SEARCH_PACKAGES):
            ss_reports[tool.name] = data
            verdicts[tool.name], wrong = secretscan_verdict(data, controls)
            bad.extend(f"{tool.name}: {problem}" for problem in wrong)
        elif tool.name == "trivy":
            verdicts[tool.name] = trivy_verdict(data, controls)
        else:
            verdicts[tool.name] = kingfisher_verdict(data, controls)
    print(f"{'tool':<11} {'wall':>8} {'cpu':>8} {'maxrss':>9} {'tree PSS':>9}  {'controls':>8}  findings above info")
    for tool in tools:
        if not tool.runs or tool.name not in verdicts:
            print(f"{tool.name:<11} {'n/a':>8}  ({tool.failed or 'no run'})")
            continue
        v = verdicts[tool.name]
        found = sum(1 for how in v.found.values() if how and "PUBLISHED" not in how)
        print(
            f"{tool.name:<11} {min(r.wall for r in tool.runs):7.1f}s {min(r.cpu for r in tool.runs):7.1f}s "
            f"{_fmt_mb(max(r.maxrss for r in tool.runs))} {_fmt_mb(max(r.pss for r in tool.runs))}  "
            f"{found:>3}/{len(controls):<4}  {v.total} ({v.counts})"
        )
    by_name = {t.name: t for t in tools}
    tv = by_name.get("trivy")
    for ss in (by_name.get("secretscan"), by_name.get(SEARCH_PACKAGES)):
        if ss and tv and ss.runs and tv.runs:
            ratio = min(r.wall for r in ss.runs) / min(r.wall for r in tv.runs)
            print(f"{ss.name} / trivy wall (best of {len(ss.runs)} / {len(tv.runs)}): {ratio:.2f}x")
    if len(ss_reports) == 2:
        verdict = [
            sorted((f.get("fingerprint"), f.get("rule_id"), f.get("severity")) for f in r.get("findings", []))
            for r in ss_reports.values()
        ]
        same = verdict[0] == verdict[1]
        print(f"secretscan findings the same with and without --search-packages: {'yes' if same else 'NO'}")
        if not same:
            bad.append("--search-packages changed the findings")
        listed = [
            {k.get("fingerprint") for k in r.get("known_test_keys", []) if str(k.get("source", "")).startswith("published by")}
            for r in ss_reports.values()
        ]
        print(
            f"values published by packages, listed: {len(listed[0])} by default, {len(listed[1])} with "
            f"--search-packages, {len(listed[0] & listed[1])} by both"
        )
        if not listed[0] <= listed[1]:
            bad.append("the default lists a published value --search-packages does not")
    print(f"\n{'control':<31} {'layer':>5} {'path:line':<62} " + " ".join(f"{t.name:<13}" for t in tools))
    for name, c in controls.items():
        cells = [(verdicts[t.name].found.get(name) or "MISSED") if t.name in verdicts else "n/a" for t in tools]
        where = _safe(f"{c['path']}:{c['line']}", 62)
        print(f"{name:<31} {c['layer']:>5} {where:<62} " + " ".join(f"{cell:<13}" for cell in cells))
    if not ss_reports:
        bad.append("secretscan produced no report")
        return bad
    ss_report = ss_reports.get("secretscan") or next(iter(ss_reports.values()))
    image = (ss_report.get("images") or [{}])[0]
    usual = {"name", "digest", "platform", "revision", "layers", "files_scanned", "bytes_scanned", "layer_details"}
    print(
        f"\nsecretscan image: files_scanned={image.get('files_scanned')} bytes_scanned={image.get('bytes_scanned')}"
        + "".join(f" {k}={_safe(json.dumps(v), 80)}" for k, v in image.items() if k not in usual)
    )
    listing = "secretscan" if "secretscan" in ss_reports else SEARCH_PACKAGES
    published = ss_reports[listing].get("known_test_keys", [])
    groups = Counter(
        (str(k.get("source", "?")), str(((k.get("locations") or [{}])[0]).get("path", "?"))) for k in published
    )
    print(f"{listing} published / known test keys (informational): {len(published)}, in {len(groups)} source:path")
    for (source, path), n in list(groups.items())[:15]:
        print(f"   {n:3d}x {_safe(source, 56, tail=False):<56} {_safe(path, 86)}")
    if len(groups) > 15:
        print(f"   … and {len(groups) - 15} more source:path")
    findings = ss_report.get("findings", [])
    print(f"secretscan findings above info: {len(findings)}")
    for f in findings:
        loc = (f.get("locations") or [{}])[0]
        mark = (
            " [control]"
            if any(f.get("secret") and _same_value(f["secret"], c["value"]) for c in controls.values())
            else ""
        )
        print(
            f"   {f.get('severity', '?'):<8} {_safe(str(f.get('rule_id')), 34):<34} "
            f"{_safe(str(loc.get('path')), 80)}:{loc.get('line') or ''}  {_safe(str(f.get('redacted')), 44, tail=False)}{mark}"
        )
    for peer in [t.name for t in tools if t.name not in ("secretscan", SEARCH_PACKAGES) and t.name in verdicts]:
        listed = verdicts[peer].listed
        print(f"{peer} findings: {len(listed)}")
        for line in listed[:25]:
            print(f"   {_safe(line, 150)}")
        if len(listed) > 25:
            print(f"   … and {len(listed) - 25} more")
    for problem in bad:
        print(f"!! secretscan: {problem}")
    return bad


# ----------------------------------------------------------------------------- main


def _start_daemon(stack: contextlib.ExitStack, images: Sequence[ImageDef], problems: list[str]) -> str:
    """A private dockerd for the rest of the run, with ``images`` loaded from their archives: its
    address, or "" (and a problem said) when it cannot start or load them."""
    import servers

    try:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-real-dockerd-")))
        info = stack.enter_context(servers.dockerd(work))
        for img in images:
            t0 = time.perf_counter()
            loaded = servers.docker_load(info, img.archive)
            print(f"   docker load {img.key} ({', '.join(loaded)}): {time.perf_counter() - t0:.0f} s", flush=True)
    except Exception as exc:  # noqa: BLE001 - no daemon here: the other forms still run
        problems.append(f"daemon: could not start dockerd and load the images ({_safe(str(exc))})")
        return ""
    return info.host


def _start_registry(stack: contextlib.ExitStack, images: Sequence[ImageDef], problems: list[str]) -> str:
    """A registry on loopback (the tests' ``servers.registry``, no auth, plain HTTP) for the rest of
    the run, with ``images`` pushed from their gzip OCI layouts (``skopeo copy``): its host, or ""
    (and a problem said) when it cannot start or take them."""
    import servers

    try:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-real-registry-")))
        info = stack.enter_context(servers.registry(work))
        for img in images:
            layout = ensure_layout(img)
            if layout is None:
                raise RuntimeError(f"{img.key}: no OCI layout to push")
            servers.push(info, f"oci:{layout}:{img.name}", img.ref)
    except Exception as exc:  # noqa: BLE001 - no registry here: the other forms still run
        problems.append(f"registry: could not start one and push the images ({_safe(str(exc))})")
        return ""
    return info.host


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs of each tool per image (default 3; best is shown)")
    ap.add_argument("--images", default="A,B", help="which images: A, B or A,B (default)")
    ap.add_argument("--only-build", action="store_true", help="build the images (if their spec changed) and stop")
    ap.add_argument("--rebuild", action="store_true", help="build again even if the spec is unchanged (new values)")
    ap.add_argument("--secretscan-only", action="store_true", help="do not run trivy and Kingfisher")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds before a run is killed (default 1800)")
    ap.add_argument(
        "--forms",
        default=",".join(DEFAULT_FORMS),
        help=f"how each image is read: {', '.join(FORMS)} (default {','.join(DEFAULT_FORMS)})",
    )
    args = ap.parse_args(argv)
    forms = [f.strip() for f in args.forms.split(",") if f.strip()]
    if not forms or any(f not in FORMS for f in forms):
        ap.error(f"--forms takes any of {', '.join(FORMS)} (got {args.forms!r})")
    keys = [k.strip().upper() for k in args.images.split(",") if k.strip()]
    unknown = [k for k in keys if k not in IMAGES]
    if unknown or not keys or args.runs < 1:
        ap.error(f"--images takes A, B or A,B (got {args.images!r}); --runs at least 1")
    WORK.mkdir(parents=True, exist_ok=True)
    built = {k: ensure_built(IMAGES[k], args.rebuild) for k in keys}
    if args.only_build:
        for k, sidecar in built.items():
            if sidecar:
                print(f"{k} {IMAGES[k].name}: {sidecar['uncompressed_bytes'] / MB:.0f} MB, {sidecar['files']} files")
        return 0 if all(built.values()) else 1
    problems: list[str] = []
    with contextlib.ExitStack() as servers_running:
        for form in forms:
            server = ""
            if form in (DAEMON, REGISTRY):
                start = _start_daemon if form == DAEMON else _start_registry
                server = start(servers_running, [IMAGES[k] for k, sidecar in built.items() if sidecar], problems)
                if not server:
                    continue
            tools = find_tools(args.secretscan_only, form, server)
            print(f"{form}: tools {', '.join(t.name for t in tools)}; {args.runs} interleaved runs per image", flush=True)
            for k, sidecar in built.items():
                if sidecar is None:
                    problems.append(f"{k}: not built")
                    continue
                img = IMAGES[k]
                if form == OCI_GZIP and ensure_layout(img) is None:
                    problems.append(f"{k} {form}: no OCI layout")
                    continue
                print(f"== scanning {k} {img.name} ({form})", flush=True)
                reports = scan_image(img, tools, args.runs, args.timeout, form, server)
                problems += [f"{k} {form}: {p}" for p in report_image(img, sidecar, tools, reports, form)]
    print()
    if problems:
        print("FAIL: " + "; ".join(problems))
        return 1
    print("OK: every control reported by secretscan, none as published")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``make bench-noise``: what secretscan reports on third-party code that holds no secret of yours.

The commonest complaint about image secret scanners is noise from what every image carries:
site-packages, node_modules, their docs, tests and examples. This installs a pinned set of
popular Python and npm packages (from PyPI and npm, once, into .bench/noise), scans each tree as
a directory, and prints what was reported: every finding there is a false positive or a published
example. It then plants freshly generated secrets in the file types the noise filters look at
(quoted in code, bare in .env, in a CLI flag and a URL query inside code) and checks all are found,
so fewer findings never means a blind scanner. Exits 1 when a planted secret is missed.
"""

from __future__ import annotations

import json
import secrets
import string
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".bench" / "noise"
PYTHON_PACKAGES = [
    "boto3==1.44.5",
    "awscli==1.46.3",
    "moto[server]==5.2.5",
    "cryptography==50.0.2",
    "tornado==6.6.1",
    "django==5.2.19",
    "requests==2.34.2",
    "azure-storage-blob==12.31.1",
    "google-cloud-storage==3.17.1",
    "paramiko==5.1.0",
    "joserfc==1.8.0",
]
NPM_PACKAGES = {
    "@aws-sdk/client-s3": "3.1169.0",
    "@azure/storage-blob": "12.32.0",
    "@octokit/rest": "22.0.1",
    "aws-sdk": "2.1693.0",
    "axios": "1.21.1",
    "eslint": "10.15.0",
    "express": "5.3.0",
    "googleapis": "178.0.0",
    "jest": "30.5.2",
    "jsonwebtoken": "9.0.3",
    "lodash": "4.18.1",
    "mongoose": "9.12.1",
    "nodemailer": "10.6.0",
    "passport": "0.7.0",
    "pg": "8.23.1",
    "redis": "6.3.1",
    "stripe": "23.1.0",
    "twilio": "6.2.0",
    "typescript": "7.0.2",
    "webpack": "5.112.2",
}


def _install() -> dict[str, Path]:
    """Laid out as in an image (scanned as directories, paths keep their site-packages and
    node_modules parts): /usr/local/lib/python3.11/site-packages and /app/node_modules."""
    py, node = WORK / "image" / "usr" / "local" / "lib" / "python3.11" / "site-packages", WORK / "image" / "app"
    if not (py / ".done").exists():
        subprocess.run(  # with their dependencies, as an image would hold them
            [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(py), *PYTHON_PACKAGES], check=True
        )
        (py / ".done").touch()
    if not (node / ".done").exists():
        node.mkdir(parents=True, exist_ok=True)
        (node / "package.json").write_text(json.dumps({"name": "noise", "private": True, "dependencies": NPM_PACKAGES}))
        subprocess.run(
            ["npm", "install", "--silent", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=node, check=True
        )
        (node / ".done").touch()
    return {"site-packages (11 packages + deps)": WORK / "image" / "usr", "node_modules (20 packages + deps)": node}


def _scan(tree: Path, *extra: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "secretscan", "scan", f"dir:{tree}", "-f", "json", "-q", "--fail-on", "none", *extra],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def _token(n: int) -> str:
    """Random letters and digits, with at least one digit: the generic rules require a digit or a
    symbol in a value (so that identifiers are not reported), which 0.5 % of 30-character
    random tokens lack."""
    alphabet = string.ascii_letters + string.digits
    token = ""
    while not any(ch.isdigit() for ch in token):
        token = "".join(secrets.choice(alphabet) for _ in range(n))
    return token


def _plant(directory: Path) -> dict[str, str]:
    """Secrets in the shapes the code filters reason about (name -> value); each must be reported."""
    values = {name: _token(30) for name in ("js", "ts", "py", "go", "flag", "env", "yaml", "query")}
    files = {
        "src/config.js": f'module.exports = {{ stripeSecret: "{values["js"]}" }};\n',
        "src/client.ts": f"const apiKey: string = '{values['ts']}';\n",
        "app/settings.py": f'SECRET_KEY = "{values["py"]}"\n',
        "cmd/main.go": f"const dbPassword = `{values['go']}`\n",
        "app/backup.py": f'subprocess.run(["pg_dump", "--password={values["flag"]}"])\n',
        "app/.env": f"PAYMENTS_API_KEY={values['env']}\n",
        "deploy/values.yaml": f"auth:\n  client_secret: {values['yaml']}\n",
        "src/orders.js": f'fetch("https://api.acme.internal/v1/orders?api_key={values["query"]}")\n',
    }
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return values


def main() -> int:
    trees = _install()
    print(f"{'tree':<36} {'files':>7} {'MB':>6} {'time':>6}  findings by severity        known test keys")
    for label, tree in trees.items():
        started = time.monotonic()
        report = _scan(tree)
        seconds = time.monotonic() - started
        image = report["images"][0]
        severities = Counter(f["severity"] for f in report["findings"])
        by_severity = ", ".join(f"{severities[s]} {s}" for s in ("critical", "high", "medium", "low") if severities[s])
        print(
            f"{label:<36} {image['files_scanned']:>7} {image['bytes_scanned'] / 1e6:>6.0f} {seconds:>5.1f}s"
            f"  {len(report['findings'])} ({by_severity or 'none'})".ljust(40)
            + f"  {len(report['known_test_keys'])}"
        )
        for f in report["findings"]:
            loc = f["locations"][0]
            print(f"    {f['severity']:<8} {f['rule_id']:<28} {loc['path'][-70:]}:{loc.get('line') or ''}")
    with tempfile.TemporaryDirectory() as tmp:
        planted = _plant(Path(tmp))
        report = _scan(Path(tmp), "--show-secrets")
        found = {f["secret"] for f in report["findings"]}
        missed = sorted(name for name, value in planted.items() if value not in found)
        print(
            "planted secrets in code, .env, YAML, a CLI flag and a URL query: "
            f"{len(planted) - len(missed)}/{len(planted)} found" + (f"; missed: {', '.join(missed)}" if missed else "")
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

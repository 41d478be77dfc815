"""Package provenance: what pip, npm, dpkg, apk and rpm recorded decides whether a value is published with
a package (listed, never failed on) or the application's (a finding, with a note saying why).

The packages are installed by the real tools (pip from a wheel built here, npm from a tarball
``npm pack`` made here, dpkg from a ``.deb`` built by ``dpkg-deb``, rpm from a package rpmbuild
builds from a spec), offline, into temporary
roots that become image layers; every secret is generated at test time."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import py_compile
import shutil
import sqlite3
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import secretgen
from conftest import fingerprint_of
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive, write_oci_layout

from secretscan.provenance.collect import Collector
from secretscan.provenance.index import ProvenanceIndex
from secretscan.provenance.model import FileFacts, LayerPackages
from secretscan.provenance.packages import PackageTable
from secretscan.provenance.system import apk_installed

SITE = "usr/local/lib/python3.11/site-packages"


def _tree(root: Path, under: str = "") -> list[Entry]:
    """A directory's files as layer entries, with their modes and times."""
    entries = []
    for path in sorted((root / under).rglob("*")):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            entries.append(
                Entry(str(path.relative_to(root)), path.read_bytes(), mode=st.st_mode & 0o7777, mtime=int(st.st_mtime))
            )
    return entries


def _wheel(tmp: Path, name: str, version: str, modules: dict[str, str]) -> Path:
    """A pure-Python wheel as a build backend writes it (RECORD with SHA-256 per file)."""
    dist = f"{name}-{version}.dist-info"
    files = {
        **{k: v.encode() for k, v in modules.items()},
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    wheel = tmp / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
        z.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return wheel


def _pip_install(root: Path, wheel: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-cache-dir"]
        + ["--disable-pip-version-check", "--root", str(root), "--prefix", "/usr/local", str(wheel)],
        check=True,
    )


def _report_by_value(result, values: dict[str, str]) -> tuple[dict[str, dict], dict[str, dict]]:
    """(name -> finding, name -> published entry) for the planted values."""
    findings = {f["fingerprint"]: f for f in result.report["findings"]}
    published = {k["fingerprint"]: k for k in result.report["known_test_keys"]}
    by_name = {n: findings[fingerprint_of(v)] for n, v in values.items() if fingerprint_of(v) in findings}
    known = {n: published[fingerprint_of(v)] for n, v in values.items() if fingerprint_of(v) in published}
    return by_name, known


def _states(finding: dict) -> dict[str, tuple[str | None, str | None]]:
    return {loc["path"]: (loc["package_state"], loc["package"]) for loc in finding["locations"]}


def _self_identifying_rules(cli) -> set[str]:
    listed = cli("rules", "list", "--self-identifying")
    assert listed.code == 0, listed.err
    return {line.split()[0] for line in listed.out.splitlines()}


def _scan_both(cli, image: Path, *args: str):
    """(the scan as it runs by default, the scan with ``--search-packages``) as JSON. By default
    the files their layer's records vouch for are verified and searched with the self-identifying
    rules only (``secretscan rules list --self-identifying``), except Python sources of system
    packages (the ``.pyc`` compiled from one is published only when its value is seen in it);
    with the flag, with every provider-format rule. Either way the exit code and every finding's
    value, rule and severity are the same, and what the default lists as published is listed
    with the flag too; what only the flag lists was found by a rule that is not self-identifying."""
    default = cli("scan", image, "-f", "json", "-q", *args)
    searched = cli("scan", image, "-f", "json", "-q", "--search-packages", *args)
    assert default.code == searched.code, (default.err, searched.err)

    def verdict(result) -> list[tuple[str, str, str]]:
        return sorted((f["fingerprint"], f["rule_id"], f["severity"]) for f in result.report["findings"])

    assert verdict(default) == verdict(searched)

    def listed(result) -> dict[str, str]:
        keys = result.report["known_test_keys"]
        return {k["fingerprint"]: k["rule_id"] for k in keys if k["source"].startswith("published by")}

    only_searched = set(listed(searched).items()) - set(listed(default).items())
    assert set(listed(default).items()) <= set(listed(searched).items())
    narrow = _self_identifying_rules(cli)
    system = ("(dpkg)", "(rpm)", "(apk)")
    sources = {k["fingerprint"]: k["source"] for k in default.report["known_test_keys"]}
    for fingerprint, rule_id in only_searched:  # (a Python source of a system package: searched with both)
        assert rule_id not in narrow or sources.get(fingerprint, "").endswith(system), (rule_id, fingerprint)
    summary, searched_summary = default.report["images"][0], searched.report["images"][0]
    assert (summary["verified_rules"], searched_summary["verified_rules"]) == ("self-identifying", "provider")
    assert summary["verified_files"] == searched_summary["verified_files"]
    return default, searched


def test_pip_pristine_is_published_modified_and_added_files_are_findings(cli, tmp_path: Path) -> None:
    values = {name: secretgen.github_pat() for name in ("doc", "shared", "modified", "added", "app")}
    client = f'"""A client.\n\nExample::\n\n    Client(token="{values["doc"]}")\n    Client(token="{values["shared"]}")\n"""\n'
    root = tmp_path / "root"
    _pip_install(root, _wheel(tmp_path, "tinypkg", "1.4.2", {"tinypkg/__init__.py": "", "tinypkg/client.py": client}))
    assert list((root / SITE / "tinypkg" / "__pycache__").glob("client.*.pyc")), "pip compiled the module"
    package_dir = f"{SITE}/tinypkg"
    image = tmp_path / "pip.tar"
    write_docker_archive(
        image,
        ImageSpec(
            [
                Layer(_tree(root), created_by="RUN pip install tinypkg"),
                Layer(
                    [
                        Entry(f"{package_dir}/client.py", f'TOKEN = "{values["modified"]}"\n'.encode()),
                        Entry(f"{package_dir}/local_settings.py", f'TOKEN = "{values["added"]}"\n'.encode()),
                        Entry(
                            "app/settings.py",
                            f'GITHUB_TOKEN = "{values["shared"]}"\nOTHER = "{values["app"]}"\n'.encode(),
                        ),
                    ],
                    created_by="COPY . /",
                ),
            ]
        ),
    )
    default, result = _scan_both(cli, image, "--fail-on", "high")
    assert result.code == 1, result.err
    findings, published = _report_by_value(result, values)
    assert set(published) == {"doc"} and set(findings) == {"shared", "modified", "added", "app"}
    assert _states(_report_by_value(default, values)[0]["shared"]) == _states(findings["shared"])
    assert "tinypkg 1.4.2 (pip)" in published["doc"]["source"]
    doc_paths = {loc["path"] for loc in published["doc"]["locations"]}
    assert f"/{package_dir}/client.py" in doc_paths and any(p.endswith(".pyc") for p in doc_paths)

    modified = _states(findings["modified"])[f"/{package_dir}/client.py"]
    assert modified[0] == "modified" and "tinypkg 1.4.2 (pip)" in modified[1]
    added = _states(findings["added"])[f"/{package_dir}/local_settings.py"]
    assert added[0] == "unrecorded" and "tinypkg" in added[1]
    shared = _states(findings["shared"])  # published in the package, and also in the application: a finding
    assert shared["/app/settings.py"] == (None, None)
    assert shared[f"/{package_dir}/client.py"][0] == "pristine"

    text = cli("scan", image, "-q", "--fail-on", "none", "--search-packages").out
    assert "modified after install: package tinypkg 1.4.2 (pip), installed by layer 0" in text
    assert "published by tinypkg 1.4.2 (pip)" in text
    assert "verified unchanged, searched with every provider-format rule" in text
    text = cli("scan", image, "-q", "--fail-on", "none").out
    assert "verified unchanged, searched with the self-identifying rules only" in text
    assert "published by tinypkg 1.4.2 (pip)" in text  # a GitHub token names itself


def test_without_package_provenance_published_values_are_findings(cli, tmp_path: Path) -> None:
    token = secretgen.github_pat()
    root = tmp_path / "root"
    _pip_install(root, _wheel(tmp_path, "docpkg", "2.0", {"docpkg/__init__.py": f'"""Use token="{token}"."""\n'}))
    image = tmp_path / "pip.tar"
    write_docker_archive(image, ImageSpec([Layer(_tree(root))]))
    assert cli("scan", image, "-f", "json", "-q", "--fail-on", "high").code == 0
    result = cli("scan", image, "-f", "json", "-q", "--fail-on", "high", "--no-package-provenance")
    assert result.code == 1 and {f["fingerprint"] for f in result.report["findings"]} == {fingerprint_of(token)}


_NEEDS_NPM = pytest.mark.skipif(
    shutil.which("npm") is None and os.environ.get("CI") != "true",
    reason="npm is not installed (make install-test needs it; under CI it must be)",
)


def _npm_installed(tmp_path: Path, package: Path, tarball: str) -> Path:
    """``package`` packed and installed offline into an app under ``tmp_path/root/app``, as
    ``npm ci`` leaves it; the app's directory."""
    subprocess.run(["npm", "pack", "--silent"], cwd=package, check=True, capture_output=True)
    app = tmp_path / "root" / "app"
    app.mkdir(parents=True)
    (app / "package.json").write_text(json.dumps({"name": "app", "version": "1.0.0", "private": True}))
    subprocess.run(
        ["npm", "install", "--offline", "--silent", "--no-audit", "--no-fund", str(package / tarball)],
        cwd=app,
        check=True,
        capture_output=True,
    )
    return app


@_NEEDS_NPM
def test_npm_member_is_published_files_added_later_are_findings(cli, tmp_path: Path) -> None:
    values = {name: secretgen.slack_bot_token() for name in ("doc", "later_layer", "later_write")}
    package = tmp_path / "pkg"
    (package / "lib").mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"name": "tinynpm", "version": "3.1.0", "main": "lib/index.js"}))
    (package / "lib" / "index.js").write_text(f'// example: client("{values["doc"]}")\nmodule.exports = 1;\n')
    app = _npm_installed(tmp_path, package, "tinynpm-3.1.0.tgz")
    installed = app / "node_modules" / "tinynpm"
    later = installed / "lib" / "patch.js"  # written in the install layer, an hour after npm wrote the package
    later.write_text(f'module.exports = "{values["later_write"]}";\n')
    stamp = int((installed / "package.json").stat().st_mtime) + 3600
    os.utime(later, (stamp, stamp))
    image = tmp_path / "npm.tar"
    write_docker_archive(
        image,
        ImageSpec(
            [
                Layer(_tree(tmp_path / "root"), created_by="RUN npm ci"),
                Layer([Entry("app/node_modules/tinynpm/config.js", f'token = "{values["later_layer"]}"\n'.encode())]),
            ]
        ),
    )
    _, result = _scan_both(cli, image, "--fail-on", "high")
    findings, published = _report_by_value(result, values)
    assert set(published) == {"doc"} and "tinynpm 3.1.0 (npm)" in published["doc"]["source"]
    assert set(findings) == {"later_layer", "later_write"}, result.report["findings"]
    state, package = _states(findings["later_layer"])["/app/node_modules/tinynpm/config.js"]
    assert state == "unrecorded" and "installed by layer 0" in package and "added by layer 1" in package
    state, package = _states(findings["later_write"])["/app/node_modules/tinynpm/lib/patch.js"]
    assert state == "unrecorded" and "written at another time" in package


@_NEEDS_NPM
def test_by_default_package_content_lists_the_keys_that_name_themselves(cli, tmp_path: Path) -> None:
    """A pristine npm package is searched with the self-identifying rules by default: a GitHub
    token, private keys inside source maps (their line breaks written ``\\n`` there) and a value
    in a credential file (``.env``: its parser knows the file by name) are listed as published by
    it; an AWS secret key, known only by the name before it, is listed with ``--search-packages``."""
    values = {"token": secretgen.github_pat(), "aws": secretgen.aws_secret_access_key(), "env": secretgen.password()}
    key, putty = secretgen.rsa_private_key_pem(), secretgen.putty_private_key()
    package = tmp_path / "pkg"
    (package / "lib").mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"name": "keyring-demo", "version": "0.3.0", "main": "lib/index.js"}))
    (package / "lib" / "index.js").write_text(f"module.exports = '{values['token']}';\n//# sourceMappingURL=index.js.map\n")
    for name, pem in (("index", key), ("putty", putty)):  # nothing else in either map names a key
        source = f"// a fixture\nexport const KEY = `{pem}`;\n"
        source_map = {"version": 3, "sources": [f"../src/{name}.ts"], "sourcesContent": [source], "mappings": "AAAA"}
        (package / "lib" / f"{name}.js.map").write_text(json.dumps(source_map))
    (package / "lib" / "aws.js").write_text(f'const aws_secret_access_key = "{values["aws"]}";\n')
    (package / "test").mkdir()
    (package / "test" / ".env").write_text(f"DB_PASSWORD={values['env']}\n")
    (package / ".npmignore").write_text("")
    app = _npm_installed(tmp_path, package, "keyring-demo-0.3.0.tgz")
    assert (app / "node_modules" / "keyring-demo" / "test" / ".env").exists(), "npm installed the .env"
    image = tmp_path / "npm.tar"
    write_docker_archive(image, ImageSpec([Layer(_tree(tmp_path / "root"), created_by="RUN npm ci")]))
    default, searched = _scan_both(cli, image, "--fail-on", "info")
    assert default.code == 0 and not default.report["findings"], default.report["findings"]
    values["key"], values["putty"] = key.strip(), putty.strip()
    findings, listed = _report_by_value(default, values)
    assert not findings and set(listed) == {"token", "key", "putty", "env"}, listed
    assert [listed[k]["rule_id"] for k in ("key", "putty", "env")] == ["private-key.pkcs8", "private-key.putty", "file.dotenv.secret"]
    assert all("published by keyring-demo 0.3.0 (npm)" in k["source"] for k in listed.values())
    assert set(_report_by_value(searched, values)[1]) == {"token", "key", "putty", "env", "aws"}


def _installed_then_changed(image: Path, root: Path, step: str, directory: str, values: dict[str, str]) -> Path:
    """``root`` as the layer a package manager's ``step`` wrote, then a layer that changes the
    package's ``other.conf`` (value ``modified``) and adds ``local.conf`` (value ``unlisted``)."""
    later = [
        Entry(f"{directory}/other.conf", f"token = {values['modified']}\n".encode()),
        Entry(f"{directory}/local.conf", f"token = {values['unlisted']}\n".encode()),
    ]
    write_docker_archive(image, ImageSpec([Layer(_tree(root), created_by=step), Layer(later)]))
    return image


def _deb(tmp: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """A binary package as dpkg-deb builds it, with the md5sums every Debian package carries."""
    tree = tmp / f"{name}-deb"
    (tree / "DEBIAN").mkdir(parents=True)
    sums = []
    for path, data in files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_bytes(data)
        sums.append(f"{hashlib.md5(data).hexdigest()}  {path}")
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: t <t@example.invalid>\nDescription: t\n"
    )
    (tree / "DEBIAN" / "md5sums").write_text("\n".join(sums) + "\n")
    deb = tmp / f"{name}.deb"
    subprocess.run(["dpkg-deb", "--build", str(tree), str(deb)], check=True, capture_output=True)
    return deb


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed (a Debian host is assumed)")
def test_dpkg_pristine_modified_and_unlisted_files(cli, tmp_path: Path) -> None:
    values = {name: secretgen.gitlab_pat() for name in ("doc", "module", "modified", "unlisted")}
    module = f'"""Example: connect(token="{values["module"]}")."""\n'.encode()
    files = {
        "usr/share/tinydeb/example.conf": f"token = {values['doc']}\n".encode(),
        "usr/share/tinydeb/other.conf": b"token = none\n",
        "usr/lib/python3/dist-packages/tinydeb_mod.py": module,
    }
    root = tmp_path / "root"
    (root / "var/lib/dpkg/info").mkdir(parents=True)
    (root / "var/lib/dpkg/updates").mkdir()
    (root / "var/lib/dpkg/status").touch()
    subprocess.run(
        ["dpkg", f"--root={root}", "--force-script-chrootless", "--force-not-root", "--log=/dev/null", "-i"]
        + [str(_deb(tmp_path, "tinydeb", "0.9-1", files))],
        check=True,
        capture_output=True,
    )
    # as py3compile does after install: the compiled file dpkg does not list
    py_compile.compile(
        str(root / "usr/lib/python3/dist-packages/tinydeb_mod.py"),
        cfile=str(root / "usr/lib/python3/dist-packages/__pycache__/tinydeb_mod.cpython-311.pyc"),
        doraise=True,
    )
    image = _installed_then_changed(
        tmp_path / "deb.tar", root, "RUN apt-get install tinydeb", "usr/share/tinydeb", values
    )
    _, result = _scan_both(cli, image, "--fail-on", "high")
    findings, published = _report_by_value(result, values)
    assert set(published) == {"doc", "module"} and set(findings) == {"modified", "unlisted"}
    assert all("tinydeb 0.9-1 (dpkg)" in published[n]["source"] for n in ("doc", "module"))
    assert any(loc["path"].endswith(".pyc") for loc in published["module"]["locations"])
    state, package = _states(findings["modified"])["/usr/share/tinydeb/other.conf"]
    assert state == "modified" and "tinydeb 0.9-1 (dpkg)" in package
    state, package = _states(findings["unlisted"])["/usr/share/tinydeb/local.conf"]
    assert state == "unrecorded" and "a directory of tinydeb 0.9-1 (dpkg)" in package


def _rpm(tmp: Path, name: str, version: str, release: str, files: dict[str, bytes], config: str) -> Path:
    """A noarch package as rpmbuild builds it from a spec here (``config``: a %config file)."""
    top = tmp / f"{name}-rpmbuild"
    payload = top / "payload"
    for path, data in files.items():
        (payload / path).parent.mkdir(parents=True, exist_ok=True)
        (payload / path).write_bytes(data)
    listed = "\n".join(f"%config(noreplace) /{p}" if p == config else f"/{p}" for p in files)
    spec = top / f"{name}.spec"
    spec.write_text(
        f"Name: {name}\nVersion: {version}\nRelease: {release}\nSummary: t\nLicense: MIT\nBuildArch: noarch\n"
        f"%description\nt\n%install\ncp -a {payload}/. %{{buildroot}}/\n%files\n{listed}\n"
    )
    subprocess.run(
        ["rpmbuild", "--define", f"_topdir {top}", "--define", "_build_id_links none", "-bb", str(spec)],
        check=True,
        capture_output=True,
    )
    return next((top / "RPMS" / "noarch").glob("*.rpm"))


def _as_berkeley_db(database: Path, target: Path) -> None:
    """The headers rpm wrote into its SQLite database, loaded into a Berkeley DB hash database by
    Berkeley DB's own ``db_load``, as RHEL 8's rpm keeps them (key: the header number)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT hnum, blob FROM Packages").fetchall()
    dump = target.with_suffix(".dump")
    lines = ["VERSION=3", "format=bytevalue", "type=hash", "db_pagesize=8192", "HEADER=END"]
    for number, blob in rows:
        lines += [" " + struct.pack("<I", number).hex(), " " + bytes(blob).hex()]
    dump.write_text("\n".join([*lines, "DATA=END", ""]))
    subprocess.run([_DB_LOAD or "db_load", "-f", str(dump), str(target)], check=True, capture_output=True)
    dump.unlink()


_DB_LOAD = shutil.which("db5.3_load") or shutil.which("db_load")


@pytest.mark.skipif(
    (shutil.which("rpmbuild") is None or _DB_LOAD is None) and os.environ.get("CI") != "true",
    reason="rpm or db5.3-util is not installed (make install-system installs them)",
)
@pytest.mark.parametrize("backend", ["sqlite", "berkeley-db"])
def test_rpm_pristine_modified_and_unlisted_files(cli, tmp_path: Path, backend: str) -> None:
    """rpm's database as rpm itself writes it when installing into a root (SQLite), and the same
    headers in a Berkeley DB file: SHA-256 per file. One package's header fits a page, the other's
    (120 files) spans overflow pages."""
    values = {name: secretgen.gitlab_pat() for name in ("doc", "config", "modified", "unlisted")}
    tiny = {
        "usr/share/tinyrpm/other.conf": b"token = none\n",
        "etc/tinyrpm/tinyrpm.conf": f"token = {values['config']}\n".encode(),
    }
    bulk = {f"usr/share/bulkrpm/part{i:03}.txt": b"x\n" for i in range(120)}
    bulk["usr/share/bulkrpm/example.conf"] = f"token = {values['doc']}\n".encode()
    root = tmp_path / "root"
    root.mkdir()
    rpm = ["rpm", f"--root={root}", "--dbpath=/var/lib/rpm"]
    subprocess.run([*rpm, "--initdb"], check=True, capture_output=True)
    packages = [
        _rpm(tmp_path, "tinyrpm", "2.4", "1.fc40", tiny, "etc/tinyrpm/tinyrpm.conf"),
        _rpm(tmp_path, "bulkrpm", "7.0", "2.el8", bulk, ""),
    ]
    subprocess.run(
        [*rpm, "-i", "--nodeps", "--noscripts", "--notriggers", "--ignorearch", "--ignoreos", *map(str, packages)],
        check=True,
        capture_output=True,
    )
    database = root / "var/lib/rpm/rpmdb.sqlite"
    assert database.stat().st_size > 0
    if backend == "berkeley-db":
        _as_berkeley_db(database, root / "var/lib/rpm/Packages")
        for stale in (root / "var/lib/rpm").glob("rpmdb.sqlite*"):
            stale.unlink()
    image = _installed_then_changed(
        tmp_path / "rpm.tar", root, "RUN dnf install -y tinyrpm", "usr/share/tinyrpm", values
    )
    _, result = _scan_both(cli, image, "--fail-on", "high")
    findings, published = _report_by_value(result, values)
    assert set(published) == {"doc", "config"} and set(findings) == {"modified", "unlisted"}
    assert "bulkrpm 7.0-2.el8 (rpm)" in published["doc"]["source"]
    assert "tinyrpm 2.4-1.fc40 (rpm)" in published["config"]["source"]
    state, package = _states(findings["modified"])["/usr/share/tinyrpm/other.conf"]
    assert state == "modified" and "tinyrpm 2.4-1.fc40 (rpm)" in package
    state, package = _states(findings["unlisted"])["/usr/share/tinyrpm/local.conf"]
    assert state == "unrecorded" and "a directory of tinyrpm 2.4-1.fc40 (rpm)" in package


def test_a_hostile_rpm_database_is_not_trusted_and_cannot_loop(tmp_path: Path) -> None:
    """A database whose ``Packages`` is a view that never ends, headers that point past their own
    ends, an overflow chain that loops: nothing is recorded, and the reading stops."""
    looping = tmp_path / "loop.sqlite"
    with sqlite3.connect(looping) as db:
        db.execute(
            "CREATE VIEW Packages AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
            "SELECT zeroblob(8) AS blob FROM n"
        )
    lying = tmp_path / "lying.sqlite"
    with sqlite3.connect(lying) as db:
        db.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB)")
        header = struct.pack(">II", 1, 16) + struct.pack(">iiii", 1000, 6, 0, 1) + b"x" * 16
        db.executemany(
            "INSERT INTO Packages (blob) VALUES (?)",
            [(header,), (struct.pack(">II", 2**31, 2**31) + b"\0" * 64,), (b"\x8e",), ("text",)],
        )
    page = 512  # a Berkeley DB file whose only value lies on an overflow chain that loops on itself
    meta = bytearray(page)
    struct.pack_into("<II", meta, 12, 0x061561, 9)
    struct.pack_into("<I", meta, 20, page)
    meta[25] = 8
    bucket = bytearray(page)
    struct.pack_into("<HH", bucket, 20, 2, 0)
    bucket[25] = 13
    struct.pack_into("<HH", bucket, 26, 500, 488)
    bucket[500:505] = b"\x01\x01\x00\x00\x00"
    bucket[488:500] = struct.pack("<B3xII", 3, 2, 10**9)
    chain = bytearray(page)
    struct.pack_into("<IHH", chain, 16, 2, 0, 400)
    chain[25] = 7
    looping_bdb = tmp_path / "Packages"
    looping_bdb.write_bytes(bytes(meta + bucket + chain))
    bdb = Collector()
    bdb.feed("/var/lib/rpm/Packages", looping_bdb.read_bytes(), 0)
    assert bdb.packages.files == {} and bdb.problems == []
    for database, lists in ((looping, False), (lying, True)):
        collector = Collector()
        collector.feed("/var/lib/rpm/rpmdb.sqlite", database.read_bytes(), 0)
        assert collector.packages.files == {}
        assert collector.packages.packages == []
        assert bool(collector.problems) is not lists  # the view is refused; the lying headers read as nothing


def test_apk_records_are_checked_by_their_sha1() -> None:
    table = PackageTable()
    data = b"token = x\n"
    q1 = "Q1" + base64.b64encode(hashlib.sha1(data).digest()).decode()
    apk_installed(table, f"C:Q1abc=\nP:musl\nV:1.2.4-r2\nF:etc\nR:musl.conf\nZ:{q1}\nR:other\n\nP:zlib\nV:1.3\n")
    index = ProvenanceIndex([table.layer])
    pristine = index.origin(0, "/etc/musl.conf", FileFacts({"sha1": hashlib.sha1(data).hexdigest()}))
    changed = index.origin(0, "/etc/musl.conf", FileFacts({"sha1": hashlib.sha1(b"other").hexdigest()}))
    undigested = index.origin(0, "/etc/other", FileFacts({"sha1": "0" * 40}))
    assert pristine is not None and str(pristine.state) == "pristine" and pristine.package == "musl 1.2.4-r2 (apk)"
    assert changed is not None and str(changed.state) == "modified"
    assert undigested is not None and undigested.state is None  # listed without a digest: not vouched for


def test_records_are_the_image_s_claims_and_hostile_ones_cost_nothing(cli, tmp_path: Path) -> None:
    """Malformed databases and a path thousands of directories deep: the scan goes on, and a value
    no record vouches for stays a finding."""
    token = secretgen.github_pat()
    deep = "/".join(["d"] * 5000)
    image = tmp_path / "hostile.tar"
    write_docker_archive(
        image,
        ImageSpec(
            [
                Layer(
                    [
                        Entry(f"{SITE}/evil-1.0.dist-info/RECORD", b'"unterminated,\x00\xff\n,,\n' * 1000),
                        Entry("var/lib/dpkg/status", b"Package: x\nConffiles:\n /etc/x nothex\n" * 100),
                        Entry("var/lib/dpkg/info/x.md5sums", b"zz  etc/x\n\n  \n"),
                        Entry("app/node_modules/x/package.json", b"[" * 100_000),
                        Entry(f"{SITE}/{deep}/leak.py", f'TOKEN = "{token}"\n'.encode()),
                    ]
                )
            ]
        ),
    )
    result = cli("scan", image, "-f", "json", "-q", "--fail-on", "high")
    assert result.code == 1, result.err
    assert {f["fingerprint"] for f in result.report["findings"]} == {fingerprint_of(token)}


def test_layer_packages_round_trip_through_the_sweep_cache_encoding() -> None:
    from secretscan.codec import pack, unpack
    from secretscan.walk.layer import LayerResult

    table = PackageTable()
    apk_installed(table, "P:musl\nV:1\nF:lib\nR:ld.so\nZ:Q1" + base64.b64encode(b"\1" * 20).decode() + "\n")
    result = LayerResult(packages=table.layer, facts={"/lib/ld.so": FileFacts({"sha1": "01" * 20}, 5, 0o644)})
    again = unpack(LayerResult, pack(result))
    assert again.packages == table.layer and again.facts == result.facts
    assert isinstance(again.packages, LayerPackages)


def test_files_their_records_vouch_for_are_searched_with_self_identifying_rules_or_provider_rules(
    cli, tmp_path: Path
) -> None:
    """An uncompressed local layer's records are read before its files: a pristine file is
    searched with the self-identifying rules only (a GitHub token names itself; an AWS secret key
    needs the name before it), or with ``--search-packages`` with every provider rule (its
    name = value guesses would be published anyway), and the report counts it; a changed copy of
    the same file is searched in full."""
    password = secretgen.password().replace("+", "8")  # "+…+" in code reads as a concatenation
    token = secretgen.github_pat()
    aws = secretgen.aws_secret_access_key()
    module = f'DEFAULT_PASSWORD = "{password}"\nEXAMPLE_TOKEN = "{token}"\naws_secret_access_key = "{aws}"\n'
    root = tmp_path / "root"
    _pip_install(root, _wheel(tmp_path, "vouched", "0.1", {"vouched/defaults.conf": module}))
    image = tmp_path / "pip.tar"
    changed = module.replace("EXAMPLE", "OTHER") + "# edited\n"
    write_docker_archive(
        image,
        ImageSpec([Layer(_tree(root)), Layer([Entry(f"app/{SITE}/vouched/defaults.conf", changed.encode())])]),
    )
    values = {"password": password, "token": token, "aws": aws}
    copy, pristine = f"/app/{SITE}/vouched/defaults.conf", f"/{SITE}/vouched/defaults.conf"
    for jobs in ("1", "2"):
        default, result = _scan_both(cli, image, "--fail-on", "none", "--jobs", jobs)
        for scanned, provider_rules in ((default, False), (result, True)):
            findings, _ = _report_by_value(scanned, values)
            assert set(findings) == {"password", "token", "aws"}  # the application's copy: everything is searched
            assert [loc["path"] for loc in findings["password"]["locations"]] == [copy]
            assert {loc["path"] for loc in findings["token"]["locations"]} == {copy, pristine}
            assert {loc["path"] for loc in findings["aws"]["locations"]} == {copy} | ({pristine} if provider_rules else set())
            summary = scanned.report["images"][0]
            assert summary["verified_files"] >= 1 and summary["verified_files"] <= summary["package_files"]
    (tmp_path / "secretscan.yaml").write_text("search_packages: true\n")
    configured = cli("scan", image, "-f", "json", "-q", "--fail-on", "none", "--config", tmp_path / "secretscan.yaml")
    assert configured.report["images"][0]["verified_rules"] == "provider"
    assert _report_by_value(configured, {"aws": aws})[0]["aws"]["locations"] == findings["aws"]["locations"]


def _pip_image_in_both_forms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compression: str
) -> tuple[str, str, Path, Path]:
    """(password, token, docker archive, OCI layout) of one image: a pip package whose module holds
    both values, and a later layer with a changed copy of it; layers compressed as asked in the
    layout. Records are read first even for its small layers."""
    from secretscan.walk import split

    monkeypatch.setattr(split, "MIN_STORED_SURVEY", 0)  # the test's layers are a few KiB
    password = secretgen.password().replace("+", "8")
    token = secretgen.github_pat()
    module = f'DEFAULT_PASSWORD = "{password}"\nEXAMPLE_TOKEN = "{token}"\n'
    root = tmp_path / "root"
    _pip_install(root, _wheel(tmp_path, "vouched", "0.1", {"vouched/defaults.conf": module}))
    changed = module.replace("EXAMPLE", "OTHER") + "# edited\n"
    layers = [
        Layer(_tree(root), compression=compression),
        Layer([Entry(f"app/{SITE}/vouched/defaults.conf", changed.encode())], compression=compression),
    ]
    archive, layout = tmp_path / "pip.tar", tmp_path / "layout"
    write_docker_archive(archive, ImageSpec(layers))
    write_oci_layout(layout, ImageSpec(layers))
    return password, token, archive, layout


HELD_COUNTS = ("files_scanned", "verified_files", "verified_bytes")
"""What a scan of layers held in memory must count as the archive's scan does."""


def _outcome(report: dict, counts: tuple[str, ...]) -> tuple[list, dict]:
    """A report's findings (value, rule, severity, where and in what package state) and the
    image summary's ``counts``."""
    summary = report["images"][0]
    findings = sorted(
        (f["fingerprint"], f["rule_id"], f["severity"], sorted((loc["path"], loc["package_state"]) for loc in f["locations"]))
        for f in report["findings"]
    )
    return findings, {k: summary[k] for k in counts}


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_a_compressed_layer_s_records_are_read_before_its_files(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compression: str
) -> None:
    """A compressed layer (an OCI layout's gzip or zstd blob) streams past once, and a package's
    records come after its files: they are read in a pass of their own first, so its pristine
    files are verified and left unsearched as in an uncompressed layer, and the report is the one
    the same image gives as a docker archive (uncompressed layers)."""
    password, token, archive, layout = _pip_image_in_both_forms(tmp_path, monkeypatch, compression)

    def outcome(result) -> tuple:
        return _outcome(result.report, ("files_scanned", "bytes_scanned", "verified_files", "verified_bytes"))

    for jobs in ("1", "2"):
        expected = cli("scan", archive, "-f", "json", "-q", "--fail-on", "none", "--jobs", jobs)
        compressed = cli("scan", f"oci:{layout}", "-f", "json", "-q", "--fail-on", "none", "--jobs", jobs)
        assert compressed.code == expected.code == 0, compressed.err
        assert outcome(compressed) == outcome(expected)
        findings, counts = outcome(compressed)
        assert counts["verified_files"] >= 1  # the pristine module among them, not searched
        assert {fingerprint_of(password), fingerprint_of(token)} <= {f[0] for f in findings}


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_an_image_s_biggest_compressed_layer_is_decompressed_into_memory_once(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compression: str
) -> None:
    """A compressed layer streams on one worker, decompressed twice (records, then scan), while the
    others wait for it: with workers to share it, the biggest is decompressed into memory once
    (never on disk), by a worker while the others scan the other layers, and its pieces are handed
    out as workers come free. The report is the archive's. When it does not fit the
    memory left (a zstd layer gives no size beforehand) or does not decompress whole (cut short),
    it is scanned from its blob as before: the report a single worker gives, which never holds it."""
    from secretscan.walk import split

    password, token, archive, layout = _pip_image_in_both_forms(tmp_path, monkeypatch, compression)
    tries = tmp_path / "inflations"
    real = split.inflate

    def inflate(*args: object) -> object:  # the real decompression, told to a file (it runs in a worker)
        result = real(*args)  # type: ignore[arg-type]
        with tries.open("a") as told:
            told.write(f"{result.error}\n")
        return result

    monkeypatch.setattr(split, "inflate", inflate)
    counts = HELD_COUNTS

    def scan_of(*args: str) -> tuple[list, dict, list]:
        result = cli("scan", f"oci:{layout}", "-f", "json", "-q", "--fail-on", "none", *args)
        assert result.code in (0, 2), result.err  # 2: the cut layer, a corrupt image
        return (*_outcome(result.report, counts), sorted(result.report["errors"]))

    expected = cli("scan", archive, "-f", "json", "-q", "--fail-on", "none")
    whole = scan_of("--jobs", "2")
    assert whole == (*_outcome(expected.report, counts), [])
    assert tries.read_text().splitlines() == ["None"]  # decompressed into memory, whole
    assert {fingerprint_of(password), fingerprint_of(token)} <= {f[0] for f in whole[0]}

    def killed(*args: object) -> object:  # the worker decompressing it dies (out of memory, a signal)
        os._exit(9)

    monkeypatch.setattr(split, "inflate", killed)
    assert scan_of("--jobs", "2") == whole  # the layer is scanned from its blob instead, and nothing is lost
    monkeypatch.setattr(split, "inflate", inflate)

    blobs = sorted((layout / "blobs" / "sha256").iterdir(), key=lambda b: b.stat().st_size)
    biggest = blobs[-1]
    stored = biggest.stat().st_size
    if compression == "zstd":  # no size beforehand: tried, found larger than the memory left
        tries.unlink()
        limit = f"max_held_blob_bytes={3 * stored}"
        assert scan_of("--jobs", "2", "--limit", limit) == scan_of("--jobs", "1", "--limit", limit) == whole
        assert tries.read_text().startswith("larger than")
    tries.unlink(missing_ok=True)
    data = bytearray(biggest.read_bytes())
    data[stored // 2 : stored // 2 + 16] = bytes(16)  # damaged inside (its trailer as it was): a digest that differs
    biggest.write_bytes(bytes(data))
    damaged = scan_of("--jobs", "2")
    assert damaged == scan_of("--jobs", "1")
    if compression == "gzip":  # its CRC finds the damage; a zstd frame without a checksum decodes it
        assert tries.read_text().startswith("not decompressed")  # as it is, in memory as on one worker
    assert any("does not match its digest" in e for e in damaged[2])


def _empty_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TMPDIR a directory of its own, which a scan that holds layers in memory leaves empty."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    return scratch


def _scanned(cli, target: object, *args: str) -> tuple[list, dict]:
    result = cli("scan", target, "-f", "json", "-q", "--fail-on", "none", *args)
    assert result.code == 0, result.err
    return _outcome(result.report, HELD_COUNTS)


def _streamed_as_before(scan_of, target: object, expected: tuple[list, dict]) -> None:
    """Past ``max_held_blob_bytes``, or under ``--timeout``, layers stream once as before: the
    same findings, their package files searched (nothing verified before it is read)."""
    for streamed in (["--limit", "max_held_blob_bytes=1"], ["--timeout", "10m"]):
        findings, counts = scan_of(target, *streamed)
        assert [f[:3] for f in findings] == [f[:3] for f in expected[0]]
        assert counts["verified_files"] == 0


@pytest.mark.servers
def test_a_registry_s_layers_are_held_in_memory_and_read_as_a_local_archive_s(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry_none, unique_repo: str
) -> None:
    """A registry's layers are held in memory as they are stored (never on disk), so that their
    package records are read before their files and several workers read them at once: the report
    is the one the same image gives as a docker archive, and a sweep of the registry verifies the
    same files. Past ``max_held_blob_bytes``, or under an
    overall ``--timeout``, they stream once as before: the same findings, their package files
    searched (nothing verified before it is read)."""
    import servers

    password, token, archive, layout = _pip_image_in_both_forms(tmp_path, monkeypatch, "gzip")  # as registries hold them
    servers.push(registry_none, layout, f"{unique_repo}:1")
    reference = f"docker://{registry_none.host}/{unique_repo}:1"
    scratch = _empty_tmpdir(tmp_path, monkeypatch)

    def scan_of(target: object, *args: str) -> tuple[list, dict]:
        return _scanned(cli, target, *args)

    expected = scan_of(archive, "--jobs", "2")
    assert expected[1]["verified_files"] >= 1
    assert {fingerprint_of(password), fingerprint_of(token)} <= {f[0] for f in expected[0]}
    for jobs in ("1", "2"):
        assert scan_of(reference, "--jobs", jobs) == expected
    assert not list(scratch.iterdir())  # held in memory: nothing written
    swept = cli("sweep", registry_none.host, "--repo", unique_repo, "--db", tmp_path / "s.db", "-f", "json", "-q")
    assert swept.code == 1, swept.err  # a sweep scans its layers the same way, one job each
    summary = swept.report["images"][0]
    assert summary["verified_files"] == expected[1]["verified_files"]
    assert sorted(f["fingerprint"] for f in swept.report["findings"]) == [f[0] for f in expected[0]]
    _streamed_as_before(scan_of, reference, expected)


def _piped(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Standard input a pipe that a thread fills with ``path``'s bytes (``docker save IMAGE |``)."""
    import threading

    read_end, write_end = os.pipe()

    def feed() -> None:
        with open(write_end, "wb") as sink, contextlib.suppress(BrokenPipeError):  # the scan stopped reading
            sink.write(path.read_bytes())

    threading.Thread(target=feed, daemon=True).start()
    monkeypatch.setattr(sys, "stdin", open(read_end))  # noqa: SIM115 - closed with the test


def _layer_sizes(archive: Path) -> list[int]:
    import tarfile

    with tarfile.open(archive) as tar:
        return [m.size for m in tar.getmembers() if m.name.endswith("layer.tar")]


def test_a_piped_image_s_layers_are_held_in_memory_and_read_as_a_local_archive_s(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``docker save IMAGE | secretscan scan -`` (and the Docker daemon's save stream) passes
    once: its layers are held in memory as they pass (never on disk), as many as
    ``max_held_blob_bytes`` allows together, then read as an archive's on disk are, records first
    and side by side. The report is the archive's, whether the budget holds every layer at once or
    one at a time; past it, or under ``--timeout``, a layer is scanned as it passes: the same
    findings, its package files searched (nothing verified before it is read)."""
    password, token, archive, _ = _pip_image_in_both_forms(tmp_path, monkeypatch, "none")
    scratch = _empty_tmpdir(tmp_path, monkeypatch)

    def scan_of(target: object, *args: str) -> tuple[list, dict]:
        if target == "-":
            _piped(archive, monkeypatch)
        return _scanned(cli, target, *args)

    expected = scan_of(archive, "--jobs", "2")
    assert expected[1]["verified_files"] >= 1
    assert {fingerprint_of(password), fingerprint_of(token)} <= {f[0] for f in expected[0]}
    one_at_a_time = f"max_held_blob_bytes={max(_layer_sizes(archive))}"
    for args in (["--jobs", "1"], ["--jobs", "2"], ["--jobs", "2", "--limit", one_at_a_time]):
        assert scan_of("-", *args) == expected, args
    assert not list(scratch.iterdir())  # held in memory: nothing written
    _streamed_as_before(scan_of, "-", expected)


def test_the_stream_s_layers_held_at_once_stay_within_the_budget() -> None:
    """The first layer held is scanned at once; the layers held meanwhile are the next batch. A
    layer that would pass the budget waits for the batch under way (its memory given back) before
    it is copied. Every layer gets its own result, the bar hears of each, and no memory file is
    left open."""
    import io as _io

    from secretscan.streamlayers import Finished, HeldInMemory
    from secretscan.walk.layer import LayerResult

    batches: list[list[bytes]] = []
    told: list[int] = []

    def scan_held(handles) -> Finished:
        batch = []
        for handle in handles:
            with handle.open() as blob:
                batch.append(blob.read())
        batches.append(batch)
        return Finished([LayerResult(files=len(data)) for data in batch])

    def scan_streamed(blob) -> LayerResult:
        return LayerResult(files=-len(blob.read()))

    open_before = len(os.listdir("/proc/self/fd"))
    layers = [os.urandom(n) for n in (300, 500, 200, 900, 100, 2000, 50)]
    reader = HeldInMemory(scan_streamed, scan_held, 1000, lambda n: None, told.append)
    keys = [reader.take(_io.BytesIO(data), len(data)) for data in layers]
    results = reader.results()
    assert [results[k].files for k in keys] == [300, 500, 200, 900, 100, -2000, 50]  # 2000 > budget: streamed
    assert [[len(d) for d in batch] for batch in batches] == [[300], [500, 200], [900], [100, 50]]
    assert sorted(d for batch in batches for d in batch) == sorted(d for d in layers if len(d) <= 1000)
    assert sum(told) == 6
    assert len(os.listdir("/proc/self/fd")) == open_before


def test_a_stream_abandoned_mid_batch_stops_its_scan_and_closes_its_memory() -> None:
    """An interrupt while a batch of held layers is being scanned (in a child) and others are
    held: the scan is stopped and every memory file is closed."""
    import io as _io

    from secretscan.streamlayers import HeldInMemory
    from secretscan.walk.layer import LayerResult

    class Endless:
        cancelled = False

        def result(self) -> list:
            raise AssertionError("an abandoned stream's batch is not waited for")

        def cancel(self) -> None:
            Endless.cancelled = True

    open_before = len(os.listdir("/proc/self/fd"))
    reader = HeldInMemory(lambda blob: LayerResult(), lambda handles: Endless(), 1000, lambda n: None)
    for size in (100, 200, 300):
        reader.take(_io.BytesIO(os.urandom(size)), size)
    assert len(os.listdir("/proc/self/fd")) == open_before + 3
    reader.abandon()
    assert Endless.cancelled
    assert len(os.listdir("/proc/self/fd")) == open_before


def test_thousands_of_tiny_layers_are_never_held_all_at_once() -> None:
    """Each held layer is a file descriptor, and a process may have as few as 1,024: an image or a
    stream of thousands of tiny layers is held a bounded number at a time (the rest of an image's
    stream from the registry, a stream's are scanned in batches), so the pipes the workers need can
    still be made."""
    import io as _io

    from secretscan.image import spool
    from secretscan.image.model import LayerHandle
    from secretscan.streamlayers import Finished, HeldInMemory
    from secretscan.walk.layer import LayerResult

    count = spool.MAX_HELD + 300
    batches: list[int] = []

    def scan_held(handles) -> Finished:
        batches.append(len(handles))
        return Finished([LayerResult() for _ in handles])

    reader = HeldInMemory(lambda blob: LayerResult(), scan_held, 1 << 30, lambda n: None)
    for _ in range(count):
        reader.take(_io.BytesIO(b"x"), 1)
    assert len(reader.results()) == count
    assert max(batches) <= spool.MAX_HELD and sum(batches) == count

    handles = [
        LayerHandle(index=i, diff_id=None, blob_digest=None, size=1, open=lambda: contextlib.nullcontext(_io.BytesIO(b"x")))
        for i in range(count)
    ]
    with spool.held(handles, 1 << 30) as held:
        assert sum(h.held for h in held) == spool.MAX_HELD
        assert all(h is original for h, original in zip(held[spool.MAX_HELD :], handles[spool.MAX_HELD :], strict=True))


@pytest.mark.servers
def test_the_docker_daemon_s_layers_are_read_as_a_local_archive_s(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docker_daemon
) -> None:
    """``docker-daemon:IMAGE`` (the check before ``docker push``): the daemon's save stream is
    read as a piped one, so the report is the one the same image gives as an archive."""
    import servers

    monkeypatch.setenv("DOCKER_HOST", docker_daemon.host)
    password, token, archive, _ = _pip_image_in_both_forms(tmp_path, monkeypatch, "none")
    tagged = tmp_path / "tagged.tar"
    _retag(archive, tagged, f"provenance/{tmp_path.name.lower()}:1")
    loaded = servers.docker_load(docker_daemon, tagged)
    expected = cli("scan", archive, "-f", "json", "-q", "--fail-on", "none")
    counts = HELD_COUNTS
    for jobs in ("1", "2"):
        result = cli("scan", f"docker-daemon:{loaded[0]}", "-f", "json", "-q", "--fail-on", "none", "--jobs", jobs)
        assert result.code == 0, result.err
        assert _outcome(result.report, counts) == _outcome(expected.report, counts)
    assert _outcome(expected.report, counts)[1]["verified_files"] >= 1
    assert {fingerprint_of(password), fingerprint_of(token)} <= {f["fingerprint"] for f in expected.report["findings"]}


def _retag(archive: Path, out: Path, tag: str) -> None:
    """A copy of a docker archive whose manifest names its image ``tag`` (docker load keeps it)."""
    import io as _io
    import tarfile

    with tarfile.open(archive) as src, tarfile.open(out, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            if member.name == "manifest.json" and data is not None:
                manifest = json.loads(data)
                manifest[0]["RepoTags"] = [tag]
                data = json.dumps(manifest).encode()
                member.size = len(data)
            dst.addfile(member, _io.BytesIO(data) if data is not None else None)


def test_package_files_longer_than_a_scan_window_are_verified_whole(cli, tmp_path: Path) -> None:
    """A file of several windows (a bundled library): its digest decides before the search, so a
    pristine one is verified and published, and the same file changed is the application's."""
    password = secretgen.password().replace("&", "7").replace("+", "8")
    token = secretgen.github_pat()
    filler = "".join(f"# line {i} of a generated table\n" for i in range(12_000))  # ~380 KB: three windows
    module = filler + f'DEFAULT_PASSWORD = "{password}"\nEXAMPLE_TOKEN = "{token}"\n' + filler
    root = tmp_path / "root"
    _pip_install(root, _wheel(tmp_path, "bigtable", "2.1", {"bigtable/data.py": module}))
    changed = module.replace("EXAMPLE", "OTHER", 1)
    image = tmp_path / "big.tar"
    write_docker_archive(
        image,
        ImageSpec([Layer(_tree(root)), Layer([Entry(f"app/{SITE}/bigtable/data.py", changed.encode())])]),
    )
    _, result = _scan_both(cli, image, "--fail-on", "none", "--limit", "chunk_bytes=160KiB")
    findings, published = _report_by_value(result, {"password": password, "token": token})
    assert [loc["path"] for loc in findings["password"]["locations"]] == [f"/app/{SITE}/bigtable/data.py"]
    states = _states(findings["token"])
    assert states[f"/{SITE}/bigtable/data.py"] == ("pristine", "bigtable 2.1 (pip)")
    summary = result.report["images"][0]
    assert summary["verified_bytes"] >= len(module)


def test_package_content_is_counted_by_directory_as_it_would_be_file_by_file() -> None:
    """``listed_content`` decides once per directory whether a package directory holds it: the
    same count as asking for every path, on trees of npm, scoped npm, Go module and gem names."""
    import random

    from secretscan.provenance.index import _root_ends, listed_content

    packages = PackageTable().layer
    for root in ("/app/node_modules/a", "/app/node_modules/@s/b", "/go/pkg/mod/x.com/m@v1", "/gems/r-1"):
        packages.roots[root] = 0
    parts = ["app", "node_modules", "@s", "a", "b", "pkg", "mod", "x.com", "m@v1", "gems", "r-1", "lib", "f@x"]
    rng = random.Random(14)
    for _ in range(500):
        sizes = {"/" + "/".join(rng.choices(parts, k=rng.randint(1, 7))): rng.randint(0, 9) for _ in range(40)}
        held = {p: s for p, s in sizes.items() if any(p[:at] in packages.roots for at in _root_ends(p))}
        assert listed_content(packages, sizes) == (len(held), sum(held.values()))

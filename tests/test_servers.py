"""Smoke tests for the real test servers (servers.py): each one works for real, on loopback only."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import tarfile
from pathlib import Path

import pytest
import requests
import servers
from imagebuilder import EmptyStep, Entry, ImageSpec, Layer, write_docker_archive, write_oci_layout

pytestmark = pytest.mark.servers

MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = ", ".join([MT_OCI_INDEX, MT_OCI_MANIFEST, MT_DOCKER_LIST, MT_DOCKER_MANIFEST])


def _spec(arch: str = "amd64", tag: str = "t/smoke:1", text: str = "hello") -> ImageSpec:
    return ImageSpec(
        steps=[
            Layer([Entry("app/", kind="dir"), Entry("app/hello.txt", f"{text} {arch}\n".encode())], created_by="COPY"),
            EmptyStep("ENV MODE=test"),
            Layer([Entry("etc/motd", b"smoke\n")], created_by="COPY motd /etc/motd"),
        ],
        env=["MODE=test"],
        labels={"org.example.smoke": "1"},
        repo_tags=[tag],
        architecture=arch,
    )


def _session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # loopback only: no proxies or netrc from the environment
    return s


def _archive(tmp_path: Path, arch: str = "amd64") -> Path:
    path = tmp_path / f"image-{arch}.tar"
    write_docker_archive(path, _spec(arch))
    return path


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    return scheme, dict(re.findall(r'(\w+)="([^"]*)"', rest))


def _manifest(info: servers.RegistryInfo, repo: str, ref: str) -> requests.Response:
    return _session().get(f"{info.url}/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT}, timeout=10)


@pytest.fixture
def pushed(registry_none: servers.RegistryInfo, tmp_path: Path, unique_repo: str) -> tuple[str, str, dict]:
    """An image in registry_none: (repo, manifest digest, manifest)."""
    digest = servers.push(registry_none, _archive(tmp_path), f"{unique_repo}:1")
    return unique_repo, digest, _manifest(registry_none, unique_repo, "1").json()


# --------------------------------------------------------------------------- helpers


def test_free_port_is_bindable_on_loopback() -> None:
    port = servers.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


@pytest.mark.parametrize("in_ci", [False, True])
def test_need_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch, in_ci: bool) -> None:
    monkeypatch.setattr(servers, "IN_CI", in_ci)
    expected = pytest.fail.Exception if in_ci else pytest.skip.Exception
    with pytest.raises(expected, match="skopeo-that-is-not-there"):
        servers.need("skopeo-that-is-not-there")
    with pytest.raises(expected, match=r"pip install 'moto\[server\]'|no_such_module_x"):
        servers.need("py:no_such_module_x")
    assert servers.need("py:json") == "json"


def test_parse_scope() -> None:
    assert servers.parse_scope("repository:ns/app:pull,push") == ("repository", "ns/app", ["pull", "push"])
    assert servers.parse_scope("repository(plugin):a:pull") == ("repository", "a", ["pull"])
    assert servers.parse_scope("registry:catalog:*") == ("registry", "catalog", ["*"])
    assert servers.parse_scope("nonsense") is None


# --------------------------------------------------------------------------- registries


def test_registry_none_push_and_pull(registry_none: servers.RegistryInfo, tmp_path: Path, unique_repo: str) -> None:
    digest = servers.push(registry_none, _archive(tmp_path), f"{unique_repo}:1")
    r = _manifest(registry_none, unique_repo, "1")
    assert r.status_code == 200, r.text
    assert r.headers["Docker-Content-Digest"] == digest == servers.manifest_digest(r.content)
    assert r.json()["mediaType"] == MT_DOCKER_MANIFEST
    config = r.json()["config"]["digest"]
    blob = _session().get(f"{registry_none.url}/v2/{unique_repo}/blobs/{config}", timeout=10)
    assert json.loads(blob.content)["architecture"] == "amd64"


def test_registry_htpasswd_needs_the_password(
    registry_htpasswd: servers.RegistryInfo, tmp_path: Path, unique_repo: str
) -> None:
    info = registry_htpasswd
    digest = servers.push(info, _archive(tmp_path), f"{unique_repo}:1")
    url = f"{info.url}/v2/{unique_repo}/manifests/1"
    anonymous = _session().get(url, headers={"Accept": ACCEPT}, timeout=10)
    assert anonymous.status_code == 401
    assert _challenge(anonymous.headers["WWW-Authenticate"])[0] == "Basic"
    wrong = _session().get(url, headers={"Accept": ACCEPT}, auth=(info.username, "wrong"), timeout=10)
    assert wrong.status_code == 401
    ok = _session().get(url, headers={"Accept": ACCEPT}, auth=(info.username, info.password), timeout=10)
    assert ok.status_code == 200, ok.text
    assert ok.headers["Docker-Content-Digest"] == digest
    assert "$2" in (info.root / "htpasswd").read_text()  # bcrypt
    assert info.password not in (info.root / "config.yml").read_text()


def test_registry_token_auth_dance(registry_token: servers.RegistryInfo, tmp_path: Path, unique_repo: str) -> None:
    info = registry_token
    assert info.issuer is not None
    digest = servers.push(info, _archive(tmp_path), f"{unique_repo}:1")
    assert any(
        r["user"] == info.username and f"repository:{unique_repo}:pull,push" in r["scopes"]
        for r in info.issuer.requests
    ), info.issuer.requests

    s = _session()
    url = f"{info.url}/v2/{unique_repo}/manifests/1"
    first = s.get(url, headers={"Accept": ACCEPT}, timeout=10)
    assert first.status_code == 401
    scheme, params = _challenge(first.headers["WWW-Authenticate"])
    assert scheme == "Bearer"
    assert params["realm"] == info.realm and params["service"] == info.service
    assert params["scope"] == f"repository:{unique_repo}:pull"

    query = {"service": params["service"], "scope": params["scope"]}
    wrong = s.get(params["realm"], params=query, auth=(info.username, "wrong"), timeout=10)
    assert wrong.status_code == 401
    token = s.get(params["realm"], params=query, auth=(info.username, info.password), timeout=10).json()
    assert token["token"] == token["access_token"] and token["expires_in"] == 300
    header = json.loads(servers.base64.urlsafe_b64decode(token["token"].split(".")[0] + "=="))
    assert header["alg"] == "RS256" and len(header["x5c"]) == 1

    ok = s.get(url, headers={"Accept": ACCEPT, "Authorization": f"Bearer {token['token']}"}, timeout=10)
    assert ok.status_code == 200, ok.text
    assert ok.headers["Docker-Content-Digest"] == digest

    # anonymous: a token with no access, which the registry refuses
    anon = s.get(params["realm"], params=query, timeout=10).json()["token"]
    refused = s.get(url, headers={"Accept": ACCEPT, "Authorization": f"Bearer {anon}"}, timeout=10)
    assert refused.status_code == 401
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]

    # a token for another repository does not open this one
    other = info.bearer_token("repository:t/other:pull")
    assert s.get(url, headers={"Accept": ACCEPT, "Authorization": f"Bearer {other}"}, timeout=10).status_code == 401


def test_token_issuer_oauth_post_and_multiple_scopes(registry_token: servers.RegistryInfo) -> None:
    info = registry_token
    assert info.issuer is not None and info.realm is not None
    form = {
        "grant_type": "password",
        "username": info.username,
        "password": info.password,
        "service": info.service,
        "scope": "repository:a/b:pull repository:c/d:pull,push",
    }
    r = _session().post(info.realm, data=form, timeout=10)
    assert r.status_code == 200, r.text
    claims = json.loads(servers.base64.urlsafe_b64decode(r.json()["access_token"].split(".")[1] + "=="))
    assert claims["access"] == [
        {"type": "repository", "name": "a/b", "actions": ["pull"]},
        {"type": "repository", "name": "c/d", "actions": ["pull", "push"]},
    ]
    assert claims["iss"] == info.issuer.issuer and claims["aud"] == info.service and claims["sub"] == info.username
    get = _session().get(
        info.realm,
        params=[("service", info.service), ("scope", "repository:a/b:pull"), ("scope", "repository:e/f:push")],
        auth=(info.username, info.password),
        timeout=10,
    )
    claims = json.loads(servers.base64.urlsafe_b64decode(get.json()["token"].split(".")[1] + "=="))
    assert [a["name"] for a in claims["access"]] == ["a/b", "e/f"]


def test_multi_platform_oci_index(registry_htpasswd: servers.RegistryInfo, tmp_path: Path, unique_repo: str) -> None:
    info = registry_htpasswd
    layout = tmp_path / "layout"
    image_digests = write_oci_layout(layout, [_spec("amd64"), _spec("arm64")], ref_names=["multi"], index=True)
    index_digest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    digest = servers.push(info, f"oci:{layout}:multi", f"{unique_repo}:multi", all_platforms=True)
    assert digest == index_digest  # pushed unchanged

    r = _session().get(
        f"{info.url}/v2/{unique_repo}/manifests/multi",
        headers={"Accept": ACCEPT},
        auth=(info.username, info.password),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    index = r.json()
    assert index["mediaType"] == MT_OCI_INDEX
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64"]
    assert [m["digest"] for m in index["manifests"]] == image_digests
    for m in index["manifests"]:
        child = _session().get(
            f"{info.url}/v2/{unique_repo}/manifests/{m['digest']}",
            headers={"Accept": ACCEPT},
            auth=(info.username, info.password),
            timeout=10,
        )
        assert child.status_code == 200 and child.json()["mediaType"] == MT_OCI_MANIFEST


# --------------------------------------------------------------------------- flaky proxy


def test_flaky_proxy_429_twice_then_forwards(
    registry_none: servers.RegistryInfo, pushed: tuple[str, str, dict]
) -> None:
    repo, digest, _ = pushed
    with servers.flaky_proxy(registry_none.host, fail_first=2, status=429, retry_after="1") as proxy:
        s = _session()
        assert s.get(f"{proxy.url}/v2/", timeout=10).status_code == 200  # not counted
        url = f"{proxy.url}/v2/{repo}/manifests/1"
        answers = [s.get(url, headers={"Accept": ACCEPT}, timeout=10) for _ in range(3)]
        assert [a.status_code for a in answers] == [429, 429, 200]
        assert answers[0].headers["Retry-After"] == "1"
        assert answers[0].json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        assert answers[2].headers["Docker-Content-Digest"] == digest
        assert answers[2].content == _manifest(registry_none, repo, "1").content
        assert proxy.failed == 2
        assert proxy.statuses("/manifests/") == [429, 429, 200]
        head = s.head(url, headers={"Accept": ACCEPT}, timeout=10)
        assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(answers[2].content)


def test_flaky_proxy_other_status_without_retry_after(
    registry_none: servers.RegistryInfo, pushed: tuple[str, str, dict]
) -> None:
    repo, _, manifest = pushed
    with servers.flaky_proxy(registry_none.host, fail_first=1, status=503, retry_after=None) as proxy:
        url = f"{proxy.url}/v2/{repo}/blobs/{manifest['layers'][0]['digest']}"
        first, second = (_session().get(url, timeout=10) for _ in range(2))
        assert first.status_code == 503 and "Retry-After" not in first.headers
        assert second.status_code == 200


def test_flaky_proxy_forwards_auth_challenges(
    registry_token: servers.RegistryInfo, tmp_path: Path, unique_repo: str
) -> None:
    info = registry_token
    servers.push(info, _archive(tmp_path), f"{unique_repo}:1")
    with servers.flaky_proxy(info.host, fail_first=0) as proxy:
        url = f"{proxy.url}/v2/{unique_repo}/manifests/1"
        challenge = _session().get(url, headers={"Accept": ACCEPT}, timeout=10)
        assert challenge.status_code == 401
        assert _challenge(challenge.headers["WWW-Authenticate"])[1]["realm"] == info.realm
        token = info.bearer_token(f"repository:{unique_repo}:pull")
        ok = _session().get(url, headers={"Accept": ACCEPT, "Authorization": f"Bearer {token}"}, timeout=10)
        assert ok.status_code == 200


def test_flaky_proxy_push_through_it(registry_none: servers.RegistryInfo, tmp_path: Path, unique_repo: str) -> None:
    """Uploads (POST/PATCH/PUT with Location redirects to the proxy) go through unharmed."""
    with servers.flaky_proxy(registry_none.host, fail_first=0) as proxy:
        digest = servers.push(registry_none, _archive(tmp_path), f"{unique_repo}:1", host=proxy.host)
        methods = {m for m, _, _ in proxy.log}
    assert {"POST", "PUT"} <= methods
    assert _manifest(registry_none, unique_repo, "1").headers["Docker-Content-Digest"] == digest


def test_flaky_proxy_tamper_blob(registry_none: servers.RegistryInfo, pushed: tuple[str, str, dict]) -> None:
    repo, _, manifest = pushed
    layer = manifest["layers"][0]["digest"]
    config = manifest["config"]["digest"]
    direct = _session().get(f"{registry_none.url}/v2/{repo}/blobs/{layer}", timeout=10).content
    with servers.flaky_proxy(registry_none.host, fail_first=0, tamper_blob=layer) as proxy:
        tampered = _session().get(f"{proxy.url}/v2/{repo}/blobs/{layer}", timeout=10)
        untouched = _session().get(f"{proxy.url}/v2/{repo}/blobs/{config}", timeout=10)
    assert tampered.status_code == 200 and len(tampered.content) == len(direct)
    assert tampered.content != direct
    assert "sha256:" + hashlib.sha256(tampered.content).hexdigest() != layer
    assert tampered.headers["Docker-Content-Digest"] == layer  # the header still claims the real digest
    assert "sha256:" + hashlib.sha256(untouched.content).hexdigest() == config


def test_flaky_proxy_redirects_blobs_to_mirror(
    registry_htpasswd: servers.RegistryInfo, tmp_path: Path, unique_repo: str
) -> None:
    info = registry_htpasswd
    servers.push(info, _archive(tmp_path), f"{unique_repo}:1")
    with servers.flaky_proxy(info.host, fail_first=0, redirect_blobs_to=True) as proxy:
        assert proxy.mirror is not None and proxy.mirror.host != proxy.host
        creds = (info.username, info.password)
        manifest = _session().get(
            f"{proxy.url}/v2/{unique_repo}/manifests/1", headers={"Accept": ACCEPT}, auth=creds, timeout=10
        )
        assert manifest.status_code == 200  # manifests are not redirected
        layer = manifest.json()["layers"][0]["digest"]
        blob_url = f"{proxy.url}/v2/{unique_repo}/blobs/{layer}"
        unauthenticated = _session().get(blob_url, timeout=10)
        assert unauthenticated.status_code == 401  # upstream's answer, passed on
        r = _session().get(blob_url, auth=creds, timeout=10)
        assert r.status_code == 200
        assert [h.status_code for h in r.history] == [307]
        assert r.history[0].headers["Location"].startswith(proxy.mirror.url + f"/blobs/{layer}?")
        assert "sha256:" + hashlib.sha256(r.content).hexdigest() == layer
        got = proxy.mirror.received[-1]
        assert got["_path"] == f"/blobs/{layer}"
        assert "authorization" not in got  # requests drops it when the redirect changes origin
        # a client that (wrongly) forwards it would be seen
        _session().get(r.history[0].headers["Location"], headers={"Authorization": "Basic eDp5"}, timeout=10)
        assert proxy.mirror.received[-1]["authorization"] == "Basic eDp5"


# --------------------------------------------------------------------------- dockerd


def test_dockerd_load_build_save(docker_daemon: servers.DockerInfo, tmp_path: Path) -> None:
    info = docker_daemon
    archive = tmp_path / "in.tar"
    [image_id] = write_docker_archive(archive, _spec(tag="smoke/loaded:1"))
    assert servers.docker_load(info, archive) == ["smoke/loaded:1"]
    inspect = json.loads(servers.docker_cli(info, "image", "inspect", "smoke/loaded:1").stdout)[0]
    assert inspect["Id"] == image_id

    saved = servers.docker_save(info, "smoke/loaded:1", tmp_path / "saved.tar")
    with tarfile.open(saved) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = tar.extractfile(manifest[0]["Config"]).read()  # type: ignore[union-attr]
    assert manifest[0]["RepoTags"] == ["smoke/loaded:1"]
    assert "sha256:" + hashlib.sha256(config).hexdigest() == image_id  # round trip keeps the image ID

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "app.conf").write_text("mode=smoke\n")
    (ctx / "Dockerfile").write_text(
        "FROM scratch\n"
        "ARG BUILD_TOKEN\n"
        "ENV APP_MODE=smoke\n"
        'LABEL org.example.smoke="yes"\n'
        "COPY app.conf /etc/app.conf\n"
        "ENV LEAKED=${BUILD_TOKEN}\n"
    )
    value = "build-arg-" + servers.secrets.token_hex(4)
    built_id = servers.docker_build(info, ctx, "smoke/built:1", build_args={"BUILD_TOKEN": value})
    assert built_id.startswith("sha256:")
    cfg = json.loads(servers.docker_cli(info, "image", "inspect", "smoke/built:1").stdout)[0]["Config"]
    assert f"LEAKED={value}" in cfg["Env"] and "APP_MODE=smoke" in cfg["Env"]
    assert cfg["Labels"] == {"org.example.smoke": "yes"}
    history = servers.docker_cli(info, "history", "--no-trunc", "--format", "{{.CreatedBy}}", "smoke/built:1").stdout
    assert "ARG BUILD_TOKEN" in history and "COPY file:" in history

    built = servers.docker_save(info, "smoke/built:1", tmp_path / "built.tar")
    with tarfile.open(built) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        files = []
        for p in manifest[0]["Layers"]:
            with tarfile.open(fileobj=tar.extractfile(p)) as layer:  # type: ignore[arg-type]
                files += [m.name for m in layer.getmembers() if m.isfile()]
    assert files == ["etc/app.conf"]  # ARG/ENV/LABEL add no layer content
    assert manifest[0]["RepoTags"] == ["smoke/built:1"]


def test_docker_build_rejects_env_changing_arg_names(docker_daemon: servers.DockerInfo, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PATH"):
        servers.docker_build(docker_daemon, tmp_path, "x:1", build_args={"PATH": "/nope"})


# --------------------------------------------------------------------------- moto


def test_moto_ecr(moto_endpoint: str) -> None:
    import boto3

    assert moto_endpoint.startswith("http://127.0.0.1:")
    ecr = boto3.client("ecr", endpoint_url=moto_endpoint, region_name="us-east-1")
    repo = ecr.create_repository(repositoryName="smoke/app")["repository"]
    assert repo["repositoryName"] == "smoke/app"
    data = ecr.get_authorization_token()["authorizationData"][0]
    user, _, password = servers.base64.b64decode(data["authorizationToken"]).decode().partition(":")
    assert user == "AWS" and password
    names = [r["repositoryName"] for r in boto3.client("ecr").describe_repositories()["repositories"]]
    assert names == ["smoke/app"]  # env alone (AWS_ENDPOINT_URL) reaches moto too


def test_moto_state_is_reset_between_tests(moto_endpoint: str) -> None:
    import boto3

    ecr = boto3.client("ecr", endpoint_url=moto_endpoint, region_name="us-east-1")
    assert ecr.describe_repositories()["repositories"] == []

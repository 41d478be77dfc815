"""Push images to a registry over its HTTP API (monolithic blob uploads, cross-repository mounts),
without skopeo: fast enough to fill a registry with hundreds of images for sweep tests and the
sweep benchmark. Blobs come from ``imagebuilder``, so images are the same as in every other test."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import requests
from imagebuilder import MT_OCI_MANIFEST, ImageSpec, _oci_image, sha256_hex


@dataclass
class Pusher:
    """One registry at ``host`` ("127.0.0.1:PORT"), plain HTTP; basic auth when given."""

    host: str
    auth: tuple[str, str] | None = None
    session: requests.Session = field(default_factory=requests.Session)
    _where: dict[str, str] = field(default_factory=dict)
    """blob digest -> a repository that already has it (for mounts)."""

    def __post_init__(self) -> None:
        if self.auth:
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            self.session.headers["Authorization"] = f"Basic {token}"

    def blob(self, repository: str, data: bytes) -> str:
        digest = "sha256:" + sha256_hex(data)
        base = f"http://{self.host}/v2/{repository}/blobs"
        if self.session.head(f"{base}/{digest}", timeout=30).status_code == 200:
            return digest
        source = self._where.get(digest)
        if source and source != repository:
            mounted = self.session.post(f"{base}/uploads/?mount={digest}&from={source}", timeout=30)
            if mounted.status_code == 201:
                return digest
            location = mounted.headers["Location"]
        else:
            started = self.session.post(f"{base}/uploads/", timeout=30)
            started.raise_for_status()
            location = started.headers["Location"]
        url = location if location.startswith("http") else f"http://{self.host}{location}"
        done = self.session.put(url, params={"digest": digest}, data=data, timeout=120)
        done.raise_for_status()
        self._where.setdefault(digest, repository)
        return digest

    def manifest(self, repository: str, reference: str, manifest: dict[str, Any]) -> str:
        body = json.dumps(manifest, separators=(",", ":")).encode()
        answer = self.session.put(
            f"http://{self.host}/v2/{repository}/manifests/{reference}",
            data=body,
            headers={"Content-Type": manifest.get("mediaType", MT_OCI_MANIFEST)},
            timeout=30,
        )
        answer.raise_for_status()
        return "sha256:" + sha256_hex(body)

    def image(self, repository: str, tag: str, spec: ImageSpec, created: str | None = None) -> str:
        """Push ``spec`` as ``repository:tag``; return the manifest digest. ``created`` overrides
        the config's creation time (for date filters)."""
        files: dict[str, bytes] = {}
        manifest = _oci_image(files, spec)
        if created is not None:
            config_digest = manifest["config"]["digest"]
            config = json.loads(files["blobs/sha256/" + config_digest.split(":")[1]])
            config["created"] = created
            data = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
            files["blobs/sha256/" + sha256_hex(data)] = data
            manifest["config"] = {**manifest["config"], "digest": "sha256:" + sha256_hex(data), "size": len(data)}
        wanted = {manifest["config"]["digest"]} | {layer["digest"] for layer in manifest["layers"]}
        for name, data in files.items():
            if "sha256:" + name.rsplit("/", 1)[-1] in wanted:
                self.blob(repository, data)
        return self.manifest(repository, tag, manifest)

    def prepared(self, repository: str, tag: str, layers: list[tuple[bytes, bytes]], history: list[str]) -> str:
        """Push an image from already built layers: (uncompressed tar, gzip blob) pairs, so a
        layer shared by many images is built and compressed once (the sweep benchmark)."""
        config = {
            "architecture": "amd64",
            "os": "linux",
            "created": "2026-01-01T00:00:00Z",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha256_hex(t) for t, _ in layers]},
            "history": [{"created_by": h} for h in history],
        }
        config_data = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": self.blob(repository, config_data),
                "size": len(config_data),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": self.blob(repository, gz),
                    "size": len(gz),
                }
                for _, gz in layers
            ],
        }
        return self.manifest(repository, tag, manifest)

    def raw_manifest(self, repository: str, reference: str) -> bytes:
        answer = self.session.get(
            f"http://{self.host}/v2/{repository}/manifests/{reference}",
            headers={"Accept": MT_OCI_MANIFEST},
            timeout=30,
        )
        answer.raise_for_status()
        return answer.content

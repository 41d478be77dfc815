"""A secret with no name on it, found by the key ID beside it (issue 17, class 3): an AWS key pair
compiled into a binary, whose string table holds the ID and the secret a few NULs apart, and the
IAM console's credentials CSV. The key ID alone was found; now its secret is too."""

from __future__ import annotations

import random
from pathlib import Path

import secretgen
from conftest import fingerprint_of, scan_json
from imagebuilder import Entry, ImageSpec, Layer, write_docker_archive


def _binary(rng: random.Random, *strings: bytes) -> bytes:
    """An ELF-shaped file: a header, code-like noise, and a read-only string table of ``strings``
    (NUL-terminated, as a compiler lays them out), then more noise."""
    noise = bytes(rng.randrange(256) for _ in range(4096))
    table = b"".join(s + b"\0" for s in strings)
    return b"\x7fELF\x02\x01\x01" + bytes(9) + noise + b"\0" + table + noise[::-1]


def _findings(cli, tmp_path: Path, files: dict[str, bytes]) -> dict[str, set[str]]:
    archive = tmp_path / "image.tar"
    layer = Layer([Entry(path, data) for path, data in files.items()], created_by="COPY build/ /usr/local/bin/")
    write_docker_archive(archive, ImageSpec([layer]))
    report = scan_json(cli, archive)
    found: dict[str, set[str]] = {}
    for finding in report["findings"]:
        found.setdefault(finding["fingerprint"], set()).add(finding["rule_id"])
    return found


def test_an_aws_key_pair_in_a_binary_is_found_whole(cli, tmp_path: Path) -> None:
    rng = random.Random()
    first_id, first_secret = secretgen.aws_access_key_id(), secretgen.aws_secret_access_key()
    second_id, second_secret = secretgen.aws_access_key_id(), secretgen.aws_secret_access_key()
    files = {
        # the ID, a region between, then the secret
        "usr/local/bin/uploader": _binary(rng, b"%s: %v", first_id.encode(), b"us-east-1", first_secret.encode()),
        # the secret first
        "usr/local/bin/reporter": _binary(rng, b"usage", second_secret.encode(), second_id.encode(), b"done"),
    }
    found = _findings(cli, tmp_path, files)
    assert "aws.access-key-id" in found[fingerprint_of(first_id)]
    assert found.get(fingerprint_of(first_secret)) == {"aws.secret-access-key-after-id"}
    assert found.get(fingerprint_of(second_secret)) == {"aws.secret-access-key-before-id"}


def test_the_iam_credentials_csv_gives_the_secret_beside_its_id(cli, tmp_path: Path) -> None:
    key_id, secret = secretgen.aws_access_key_id(), secretgen.aws_secret_access_key()
    csv = (
        "User name,Password,Access key ID,Secret access key,Console login link\n"
        f"deploy,,{key_id},{secret},https://123456789012.signin.aws.amazon.com/console\n"
    ).encode()
    found = _findings(cli, tmp_path, {"root/deploy_credentials.csv": csv})
    assert found.get(fingerprint_of(secret)) == {"aws.secret-access-key-after-id"}


def test_what_only_sits_near_a_key_id_is_not_taken_for_its_secret(cli, tmp_path: Path) -> None:
    rng = random.Random()
    key_id = secretgen.aws_access_key_id()
    digest = "".join(rng.choice("0123456789abcdef") for _ in range(40))  # a commit id: hex, low entropy
    long_token = secretgen.aws_secret_access_key() + "Zq9"  # 43 characters: not a secret access key
    far = secretgen.aws_secret_access_key()  # three strings away: no longer beside it
    files = {
        "usr/local/bin/a": _binary(rng, key_id.encode(), digest.encode()),
        "usr/local/bin/b": _binary(rng, key_id.encode(), long_token.encode()),
        "usr/local/bin/c": _binary(rng, key_id.encode(), b"one", b"two", b"three", far.encode()),
    }
    found = _findings(cli, tmp_path, files)
    assert "aws.access-key-id" in found[fingerprint_of(key_id)]
    for value in (digest, long_token, far):
        assert fingerprint_of(value) not in found, value

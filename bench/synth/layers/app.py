"""The application layers: a .env a later layer deletes, the Java app and deployment bits, the cleanup.

Secrets in hard places: AWS keys in a whited-out file (still in its layer's blob), a password in
a jar nested in a jar, a Vault token in an ELF string table and a PEM private key; next to them
near-misses a scanner must leave alone (a public key, authorized_keys, templated config).
"""

from __future__ import annotations

import random
from functools import partial

import secretgen as gen

from ..contents import elf_bytes, jar_bytes
from ..model import Build, Files, LayerPlan
from ..params import COMPRESSED_SPLIT, KiB, MiB
from ..secret_values import ec_private_key, safe_password
from ..values import hexstr, lognormal, ssh_public_key, uuid4, version


def layer_env_file(build: Build) -> LayerPlan:
    """A .env with an AWS key pair; a later layer deletes it (it stays in this layer's blob)."""
    key_id = gen.aws_access_key_id(build.secret_seed(1))
    secret = gen.aws_secret_access_key(build.secret_seed(2))
    build.plant(key_id, "aws.access-key-id", "/app/.env line 1 (deleted by a later layer: RUN rm /app/.env)")
    build.plant(secret, "aws.secret-access-key", "/app/.env line 2 (deleted by a later layer: RUN rm /app/.env)")
    files = Files(build, "app")
    files.add("app/.env", f"AWS_ACCESS_KEY_ID={key_id}\nAWS_SECRET_ACCESS_KEY={secret}\nAWS_REGION=eu-west-1\n")
    files.add("app/README.md", "# shop\n\nCopy .env.example to .env and fill in your values.\n")
    return LayerPlan("COPY .env /app/.env # buildkit", files.specs)


def layer_app(build: Build) -> LayerPlan:
    """The Java part and deployment bits: a fat jar whose nested jar holds a password, library
    jars, an ELF tool with a Vault token in its string table, a PEM private key, and near-misses
    (a public key, authorized_keys, templated config)."""
    pools, rng = build.pools, build.rng("plan/app")
    files = Files(build, "app")
    budget = build.budget("compressed", COMPRESSED_SPLIT["jars"])
    inner_jar = "shop-config-2.3.1.jar"
    pw = build.plant(safe_password(build, 12), "file.properties.secret", f"/app/app.jar!BOOT-INF/lib/{inner_jar}!application.properties line 3")  # fmt: skip
    props = (
        "# shop configuration\nspring.datasource.url=jdbc:postgresql://db:5432/shop\n"
        f"spring.datasource.password={pw}\nserver.port=8080\n"
    ).encode()
    fat_target = budget // 3

    def fat_jar(r: random.Random) -> bytes:
        inner = jar_bytes(build, r, "com.example.shop.config", 64 * KiB, extra={"application.properties": props})
        libs = {
            f"{w}-{version(r)}.jar": jar_bytes(build, r, f"org.{w}", lognormal(r, 300 * KiB, 0.8, 20 * KiB, 3 * MiB))
            for w in r.sample(pools.words, 6)
        }
        libs[inner_jar] = inner
        return jar_bytes(build, r, "com.example.shop", fat_target, nested=libs)  # the nested jars count

    files.gen("app/app.jar", fat_jar, kind="compressed")
    total = fat_target
    while total < budget:
        target = min(lognormal(rng, 500 * KiB, 1.0, 20 * KiB, 8 * MiB), budget - total + KiB)
        w = rng.choice(pools.words)
        path = f"app/lib/{w}-{rng.choice(pools.words)}-{version(rng)}.jar"
        if path in files:
            continue
        files.gen(path, partial(jar_bytes, build, group=f"org.{w}", target=target), kind="compressed")
        total += target

    vault = build.plant(gen.vault_token(build.secret_seed(13)), "vault.service-token", "/usr/local/bin/deployer (ELF string table)")  # fmt: skip
    strings = [b"VAULT_ADDR=https://vault.internal:8200", vault.encode(), b"deploy: %s"]
    files.gen("usr/local/bin/deployer", partial(elf_bytes, pools, size=3 * MiB, shared=False, extra=strings), mode=0o755, kind="binaries", key="deployer")  # fmt: skip

    app_yaml = (
        "server:\n  port: 8080\ndatabase:\n  host: db\n  password: ${DB_PASSWORD}\nstripe:\n  api_key: ${STRIPE_API_KEY}\n"
        f"build:\n  commit: {hexstr(rng, 20)}\n  image_digest: sha256:{hexstr(rng, 32)}\n  request_id: {uuid4(rng)}\n"
    )
    files.add("root/.ssh/authorized_keys", ssh_public_key(rng, "deploy@ci"))
    priv, pub = ec_private_key(build)
    build.plant(priv.strip(), "private-key.pkcs8", "/etc/ssl/private/shop.key (PEM)")
    files.add("etc/ssl/private/shop.key", priv, mode=0o600)
    files.add("app/config/jwt-public.pem", pub)
    files.add("app/config/application.yaml", app_yaml)
    return LayerPlan("COPY build/ / # buildkit", files.specs)


def layer_cleanup(build: Build) -> LayerPlan:
    """`RUN rm /app/.env`: a whiteout hides the file from the final filesystem, but its bytes stay
    in the earlier layer's blob, which is where a scanner must still find the AWS keys."""
    files = Files(build, "app")
    files.whiteout("app/.env")
    files.add("app/.env.example", "AWS_ACCESS_KEY_ID=\nAWS_SECRET_ACCESS_KEY=\nAWS_REGION=eu-west-1\n")
    return LayerPlan("RUN /bin/sh -c rm /app/.env && mkdir -p /var/log/app /srv/data # buildkit", files.specs)

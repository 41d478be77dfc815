"""AWS Secrets Manager as a migration destination (``migrate … --to aws-secrets[:PREFIX]``).

A secret name per unmanaged finding (``PREFIX`` + repository + name). ``apply`` creates the secret
(``CreateSecret``, with the KMS key and tags asked for) or puts a new version (``PutSecretValue``),
each with a ``ClientRequestToken`` derived from the name and the value's fingerprint: a retried or
repeated request with the same value is the same version, never a second one. A different current
value is never replaced unless forced.
"""

from __future__ import annotations

import hmac
import shlex
import uuid
from typing import Any

from secretscan.models import SecretStore
from secretscan.stores.aws.connect import (
    DENIED,
    AwsSecretsSettings,
    ClientFactory,
    error_code,
    failure,
    secrets_manager,
)
from secretscan.stores.model import WriteAction, Written

_TOKENS = uuid.UUID("5ec7e75c-a11e-4c0d-9d1e-6a7b00000002")
"""Namespace of the request tokens: a token is a UUID (what AWS recommends), 36 characters."""
DESCRIPTION = "Moved out of a container image by secretscan migrate"


def request_token(name: str, fingerprint: str) -> str:
    """The ``ClientRequestToken`` for ``name`` holding the value with ``fingerprint``: the same on
    every run for the same value. AWS shows it as the version id; it says no more of the value than
    the fingerprint does (see docs/aws-secrets.md on the fingerprint key)."""
    return str(uuid.uuid5(_TOKENS, f"{name}\n{fingerprint}"))


class AwsSecretsDestination:
    kind = SecretStore.AWS_SECRETS

    def __init__(self, settings: AwsSecretsSettings, connect: ClientFactory = secrets_manager) -> None:
        self.settings = settings
        self._connect = connect

    @property
    def root(self) -> str:
        return self.settings.migrate_prefix

    def describe(self) -> str:
        prefix = self.settings.migrate_prefix
        return f"AWS Secrets Manager, names under `{prefix}`" if prefix else "AWS Secrets Manager"

    def place(self, repository: str, name: str) -> str:
        prefix = self.settings.migrate_prefix
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return f"{prefix}{repository}/{name}"

    def ref(self, place: str) -> str:
        return place

    def store_command(self, place: str) -> str:
        """Reads the value from stdin (``file:///dev/stdin``): it never appears on a command line."""
        command = ["aws", "secretsmanager", "create-secret", "--name", place, "--secret-string", "file:///dev/stdin"]
        if self.settings.kms_key_id:
            command += ["--kms-key-id", self.settings.kms_key_id]
        if self.settings.create_tags:
            command += ["--tags", *(f"Key={k},Value={v}" for k, v in self.settings.create_tags)]
        return shlex.join(command)

    def runtime(self, place: str, variable: str) -> str:
        return (
            f"Inject at run time from the AWS Secrets Manager secret {place}: on ECS, the container definition's "
            f'`"secrets": [{{"name": "{variable}", "valueFrom": "{place}"}}]` (the secret\'s ARN when it is in '
            "another account; the task execution role needs secretsmanager:GetSecretValue on it); on EKS, External "
            f"Secrets Operator (an ExternalSecret with `remoteRef: {{key: {place}}}` from a SecretStore of the aws "
            "provider, service SecretsManager) or the Secrets Store CSI driver's AWS provider (a SecretProviderClass "
            f'object `{{objectName: "{place}", objectType: "secretsmanager"}}`), into env var {variable} or a file.'
        )

    def plan_fields(self, place: str) -> dict[str, Any]:
        return {
            "secret_name": place,
            "kms_key_id": self.settings.kms_key_id,
            "tags": dict(self.settings.create_tags),
        }

    def writer(self) -> AwsSecretsWriter:
        return AwsSecretsWriter(self._connect(), self.settings)


class AwsSecretsWriter:
    def __init__(self, client: Any, settings: AwsSecretsSettings) -> None:
        self.client = client
        self.settings = settings

    def write(self, place: str, value: str, fingerprint: str, *, force: bool) -> Written:
        import botocore.exceptions

        token = request_token(place, fingerprint)
        action = "DescribeSecret"
        try:
            try:
                described = self.client.describe_secret(SecretId=place)
            except botocore.exceptions.ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
                action = "CreateSecret"
                return self._create(place, value, token)
            arn = str(described["ARN"])
            if described.get("DeletedDate"):
                return Written(
                    WriteAction.CONFLICT,
                    problem=f"{place} is scheduled for deletion in AWS Secrets Manager: left as is (restore it, or "
                    "choose another --to aws-secrets:PREFIX)",
                    details={"arn": arn},
                )
            action = "GetSecretValue"
            current, version = self._current(arn)
            if isinstance(current, str) and _same(current, value):
                return Written(WriteAction.UNCHANGED, version, details={"arn": arn})
            if version is not None and not force:
                return Written(
                    WriteAction.CONFLICT,
                    version,
                    f"{place} already holds a different value (version {version}): left as is (--force overwrites it)",
                    {"arn": arn},
                )
            action = "PutSecretValue"
            answer = self.client.put_secret_value(SecretId=arn, SecretString=value, ClientRequestToken=token)
            if "AWSCURRENT" not in (answer.get("VersionStages") or ["AWSCURRENT"]):
                return Written(
                    WriteAction.CONFLICT,
                    answer.get("VersionId"),
                    f"{place}: this value is an older version ({answer.get('VersionId')}) that is no longer "
                    "AWSCURRENT: left as is (move AWSCURRENT to it with update-secret-version-stage, if meant)",
                    {"arn": arn},
                )
            action_done = WriteAction.OVERWRITTEN if version is not None else WriteAction.CREATED
            return Written(action_done, answer.get("VersionId"), details={"arn": arn})
        except botocore.exceptions.ClientError as exc:
            code = error_code(exc)
            if code in DENIED:
                return Written(WriteAction.DENIED, problem=f"{place}: access denied for secretsmanager:{action}")
            if code in ("ResourceExistsException", "InvalidRequestException"):
                return Written(
                    WriteAction.CONFLICT,
                    problem=f"{place}: secretsmanager:{action} refused ({code}): left as is; re-run to compare again",
                )
            raise failure(exc, action, self.client, place) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise failure(exc, action, self.client, place) from None

    def _create(self, place: str, value: str, token: str) -> Written:
        request: dict[str, Any] = {
            "Name": place,
            "SecretString": value,
            "ClientRequestToken": token,
            "Description": DESCRIPTION,
        }
        if self.settings.kms_key_id:
            request["KmsKeyId"] = self.settings.kms_key_id
        if self.settings.create_tags:
            request["Tags"] = [{"Key": k, "Value": v} for k, v in self.settings.create_tags]
        answer = self.client.create_secret(**request)
        return Written(WriteAction.CREATED, answer.get("VersionId"), details={"arn": str(answer.get("ARN"))})

    def _current(self, arn: str) -> tuple[str | bytes | None, str | None]:
        """(the AWSCURRENT value, its version id); (None, None) for a secret with no version yet."""
        import botocore.exceptions

        try:
            answer = self.client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None, None
            raise
        value = answer.get("SecretString")
        return (value if isinstance(value, str) else answer.get("SecretBinary")), answer.get("VersionId")


def _same(a: str, b: str) -> bool:
    """Equal, compared in constant time (both values are in memory already)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))

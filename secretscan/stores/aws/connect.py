"""An AWS Secrets Manager client configured the way AWS users expect: boto3's credential chain
(environment, ``AWS_PROFILE``, SSO, web identity, container and instance roles), its region, and
its endpoint settings (``AWS_ENDPOINT_URL_SECRETS_MANAGER``, ``AWS_ENDPOINT_URL``). Credentials
never come from the command line. Every call has connect and read timeouts and a bounded number of
attempts; every failure is one line that names the action, never a value."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from secretscan.errors import UsageError
from secretscan.origin import plain_http_refusal
from secretscan.stores.model import StoreError

SERVICE = "secretsmanager"
TIMEOUT_SECONDS = 10.0
MAX_ATTEMPTS = 3
"""Per call, retries included (botocore's standard mode: throttling and 5xx are retried)."""
DEFAULT_MIGRATE_PREFIX = "secretscan/"
DENIED = frozenset({"AccessDeniedException", "AccessDenied"})
REFUSED = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)
_FILTER_VALUE = re.compile(r"[a-zA-Z0-9 :_@/+=.\-]{1,512}")
"""What ListSecrets accepts as a filter value (without the leading ``!`` of a negation)."""
_TAG = re.compile(r"[^=]{1,128}")
_XML_CODE = re.compile(r"<Code>([A-Za-z.]{1,64})</Code>")


class AwsSecretsError(StoreError):
    """AWS Secrets Manager unreachable, credentials refused or missing, a permission missing."""


@dataclass(frozen=True)
class TagSelector:
    """``--aws-secrets-tag KEY[=VALUE]``: only secrets with this tag (and value)."""

    key: str
    value: str | None = None

    @classmethod
    def parse(cls, text: str) -> TagSelector:
        key, eq, value = text.partition("=")
        if not _TAG.fullmatch(key):
            raise UsageError(f"--aws-secrets-tag {text!r}: expected KEY or KEY=VALUE")
        return cls(key, value if eq else None)

    def matches(self, tags: dict[str, str]) -> bool:
        return self.key in tags and (self.value is None or tags[self.key] == self.value)


@dataclass(frozen=True)
class AwsSecretsSettings:
    prefix: str = ""
    """``--aws-secrets PREFIX``: only secrets whose name starts with it."""
    tags: tuple[TagSelector, ...] = ()
    migrate_prefix: str = DEFAULT_MIGRATE_PREFIX
    """``--to aws-secrets:PREFIX``: names of migrated secrets start with it."""
    kms_key_id: str | None = None
    """``--kms-key-id``: the KMS key migrated secrets are encrypted with (default: aws/secretsmanager)."""
    create_tags: tuple[tuple[str, str], ...] = ()
    """``--aws-tag KEY=VALUE``: tags put on the secrets ``migrate apply`` creates."""

    def __post_init__(self) -> None:
        if self.prefix and not _FILTER_VALUE.fullmatch(self.prefix):
            raise UsageError(
                f"--aws-secrets {self.prefix!r}: a name prefix has letters, digits, spaces and :_@/+=.- only"
            )
        if self.migrate_prefix and not re.fullmatch(r"[A-Za-z0-9/_+=.@-]{1,256}", self.migrate_prefix):
            raise UsageError(
                f"--to aws-secrets:{self.migrate_prefix}: a secret name has letters, digits and /_+=.@- only"
            )


ClientFactory = Callable[[], Any]


def secrets_manager() -> Any:
    """A Secrets Manager client from boto3's own configuration; raises ``AwsSecretsError`` when it
    has no region or no credentials (said before any request)."""
    import boto3
    import botocore.config
    import botocore.exceptions

    try:
        session = boto3.session.Session()
        if not session.region_name:
            raise AwsSecretsError("no AWS region: set AWS_REGION (or a region in the AWS profile)")
        if session.get_credentials() is None:
            raise AwsSecretsError(
                "no AWS credentials: boto3's chain found none (environment, AWS_PROFILE, SSO, web identity, "
                "container or instance role)"
            )
        config = botocore.config.Config(
            connect_timeout=TIMEOUT_SECONDS,
            read_timeout=TIMEOUT_SECONDS,
            retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            user_agent_extra="secretscan",
        )
        client = session.client(SERVICE, config=config)
    except botocore.exceptions.BotoCoreError as exc:
        raise AwsSecretsError(f"cannot configure the AWS client ({type(exc).__name__})") from None
    refused = plain_http_refusal(client.meta.endpoint_url, "secret values")  # AWS_ENDPOINT_URL may be http
    if refused:
        raise AwsSecretsError(refused)
    return client


def error_code(exc: Exception) -> str:
    """The AWS error code of a ``ClientError`` (``AccessDeniedException``), else ``""``. An error
    body botocore could not parse leaves the HTTP status as the code; when that body is an AWS
    XML error (a gateway or emulator answering a JSON service in XML), its ``<Code>`` is used."""
    response = getattr(exc, "response", None)
    error = response.get("Error") if isinstance(response, dict) else None
    if not isinstance(error, dict):
        return ""
    code = str(error.get("Code") or "")
    if code.isdigit():
        inner = _XML_CODE.search(str(error.get("Message") or "")[:4096])
        return inner.group(1) if inner else code
    return code


def failure(exc: Exception, action: str, client: Any = None, on: str = "") -> AwsSecretsError:
    """One line for an AWS call that failed: the action, where, and what AWS said (its code only:
    AWS messages can quote request parameters)."""
    import botocore.exceptions

    where = f" at {client.meta.endpoint_url}" if client is not None else ""
    target = f" on {on}" if on else ""
    code = error_code(exc)
    if code in DENIED:
        return AwsSecretsError(f"access denied for secretsmanager:{action}{target}{where}")
    if code in REFUSED:
        return AwsSecretsError(f"AWS refused the credentials ({code}) for secretsmanager:{action}{where}")
    if code:
        return AwsSecretsError(f"secretsmanager:{action}{target} failed ({code}){where}")
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return AwsSecretsError("no AWS credentials: boto3's chain found none")
    if isinstance(exc, botocore.exceptions.NoRegionError):
        return AwsSecretsError("no AWS region: set AWS_REGION (or a region in the AWS profile)")
    if isinstance(exc, botocore.exceptions.BotoCoreError) and "Credential" in type(exc).__name__:
        return AwsSecretsError(f"AWS credentials could not be obtained ({type(exc).__name__})")
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return AwsSecretsError(f"unreachable for secretsmanager:{action}{where} ({type(exc).__name__})")
    return AwsSecretsError(f"secretsmanager:{action}{target} failed ({type(exc).__name__}){where}")

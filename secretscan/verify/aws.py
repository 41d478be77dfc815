"""AWS access keys: STS ``GetCallerIdentity`` with the found key pair (read-only, needs no
permission; ``AWS_ENDPOINT_URL_STS`` or the configured endpoint points it elsewhere), then, for a
live key, IAM ``GetAccessKeyLastUsed`` on that key with the same pair, where the key's own policy
allows it: when it was last used, and for which service, is what responders ask first. IAM is
reached as boto3 resolves it (``AWS_ENDPOINT_URL_IAM``, ``AWS_ENDPOINT_URL``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from secretscan.models import Verdict
from secretscan.origin import plain_http_refusal

_DEAD = {"InvalidClientTokenId", "AccessDenied", "ExpiredToken", "UnrecognizedClientException"}
_NOT_ALLOWED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


def verify_aws(key_id: str, secret: str, endpoint: str | None, timeout: float) -> tuple[Verdict, str]:
    import boto3
    import botocore.config
    import botocore.exceptions

    session = boto3.session.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret, aws_session_token=None, region_name="us-east-1"
    )
    config = botocore.config.Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1})
    try:
        sts = session.client("sts", endpoint_url=endpoint, config=config)
        refused = plain_http_refusal(sts.meta.endpoint_url, "a request signed with the found key")
        if refused:
            return Verdict.UNKNOWN, refused
        identity = sts.get_caller_identity()
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _DEAD:
            return Verdict.REVOKED, f"STS {code}"
        if code == "SignatureDoesNotMatch":
            return Verdict.UNKNOWN, "STS SignatureDoesNotMatch (the key ID exists; this secret is not its pair)"
        return Verdict.UNKNOWN, f"STS {code or 'error'}"
    except (botocore.exceptions.BotoCoreError, ValueError) as exc:
        return Verdict.UNKNOWN, f"STS unreachable ({type(exc).__name__})"
    evidence = f"STS GetCallerIdentity: account {identity.get('Account')}, {identity.get('Arn')}"
    return Verdict.LIVE, f"{evidence}; {_last_used(session, key_id, config)}"


def _last_used(session: Any, key_id: str, config: Any) -> str:
    """``last used 2026-05-01T10:20:00Z (s3, eu-west-1)``, ``never used``, or why it is not known.
    A live key that may not read its own last use says so: the verdict stands either way."""
    import botocore.exceptions

    try:
        iam = session.client("iam", config=config)
        refused = plain_http_refusal(iam.meta.endpoint_url, "a request signed with the found key")
        if refused:
            return f"last use not known: {refused}"
        answer = iam.get_access_key_last_used(AccessKeyId=key_id)
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _NOT_ALLOWED:
            return "last use not known: this key may not call iam:GetAccessKeyLastUsed"
        return f"last use not known (IAM {code or 'error'})"
    except (botocore.exceptions.BotoCoreError, ValueError) as exc:
        return f"last use not known (IAM unreachable: {type(exc).__name__})"
    used = answer.get("AccessKeyLastUsed") or {}
    when = used.get("LastUsedDate")
    if when is None:
        return "never used (IAM GetAccessKeyLastUsed)"
    stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(when, datetime) else str(when)
    return (
        f"last used {stamp} ({used.get('ServiceName') or '?'}, {used.get('Region') or '?'}; "
        f"user {answer.get('UserName') or '?'})"
    )

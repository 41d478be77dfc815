"""AWS access keys: STS ``GetCallerIdentity`` with the found key pair (read-only, needs no
permission; ``AWS_ENDPOINT_URL_STS`` or the configured endpoint points it elsewhere)."""

from __future__ import annotations

from secretscan.models import Verdict

_DEAD = {"InvalidClientTokenId", "AccessDenied", "ExpiredToken", "UnrecognizedClientException"}


def verify_aws(key_id: str, secret: str, endpoint: str | None, timeout: float) -> tuple[Verdict, str]:
    import boto3
    import botocore.config
    import botocore.exceptions

    try:
        client = boto3.client(
            "sts",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            aws_session_token=None,
            region_name="us-east-1",
            endpoint_url=endpoint,
            config=botocore.config.Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}),
        )
        identity = client.get_caller_identity()
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _DEAD:
            return Verdict.REVOKED, f"STS {code}"
        if code == "SignatureDoesNotMatch":
            return Verdict.UNKNOWN, "STS SignatureDoesNotMatch (the key ID exists; this secret is not its pair)"
        return Verdict.UNKNOWN, f"STS {code or 'error'}"
    except (botocore.exceptions.BotoCoreError, ValueError) as exc:
        return Verdict.UNKNOWN, f"STS unreachable ({type(exc).__name__})"
    return Verdict.LIVE, f"STS GetCallerIdentity: account {identity.get('Account')}, {identity.get('Arn')}"

"""Verifies a browser-based S3 POST (presigned form) the way S3 does, which moto does not.

Written by hand because no maintained library verifies SigV4 POST policies server-side: botocore
only generates them. The rules follow AWS's "Authenticating Requests in Browser-Based Uploads
Using POST (AWS Signature Version 4)" and "Creating a POST Policy" pages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Form fields S3 does not require the policy to mention.
UNCOVERED_FIELDS = frozenset({"policy", "x-amz-signature", "file"})


class PolicyViolation(Exception):
    """Rejection as S3 phrases it: an HTTP status, an S3 error code and a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class VerifiedUpload:
    key: str  # with ${filename} substituted
    fields: dict[str, str]


def signing_key(secret_key: str, date: str, region: str, service: str = "s3") -> bytes:
    key = ("AWS4" + secret_key).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _check_signature(form: Mapping[str, str], encoded_policy: str, secrets: Mapping[str, str]) -> None:
    if form.get("x-amz-algorithm") != "AWS4-HMAC-SHA256":
        raise PolicyViolation(400, "InvalidArgument", "x-amz-algorithm must be AWS4-HMAC-SHA256")
    credential = _required(form, "x-amz-credential")
    try:
        access_key, date, region, service, terminator = credential.split("/")
    except ValueError:
        raise PolicyViolation(
            400, "AuthorizationQueryParametersError", "malformed x-amz-credential"
        ) from None
    if service != "s3" or terminator != "aws4_request":
        raise PolicyViolation(400, "AuthorizationQueryParametersError", "malformed x-amz-credential")
    if access_key not in secrets:
        raise PolicyViolation(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist.")
    expected = hmac.new(
        signing_key(secrets[access_key], date, region), encoded_policy.encode(), hashlib.sha256
    )
    if not hmac.compare_digest(expected.hexdigest(), _required(form, "x-amz-signature")):
        raise PolicyViolation(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )


def _unexpired_conditions(encoded_policy: str, now: datetime) -> list[Any]:
    try:
        policy = json.loads(base64.b64decode(encoded_policy, validate=True))
        expiration = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%S%z")
        conditions: list[Any] = policy["conditions"]
    except (ValueError, KeyError, TypeError):
        raise PolicyViolation(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.") from None
    if now >= expiration:
        raise PolicyViolation(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    return conditions


def verify_post(
    bucket: str,
    fields: Mapping[str, str],
    file_name: str,
    file_size: int,
    secrets: Mapping[str, str],
    now: datetime | None = None,
) -> VerifiedUpload:
    """Checks signature, expiry and every policy condition; returns the object key to store."""
    form = {name.lower(): value for name, value in fields.items()}
    encoded_policy = _required(form, "policy")
    _check_signature(form, encoded_policy, secrets)
    conditions = _unexpired_conditions(encoded_policy, now or datetime.now(UTC))

    key = _required(form, "key").replace("${filename}", file_name)
    values = {**form, "key": key, "bucket": bucket}
    covered = {"bucket"}
    for condition in conditions:
        covered.add(_check_condition(condition, values, file_size))
    extra = sorted(
        name for name in form if name not in covered | UNCOVERED_FIELDS and not name.startswith("x-ignore-")
    )
    if extra:
        raise PolicyViolation(
            403, "AccessDenied", f"Invalid according to Policy: Extra input fields: {', '.join(extra)}"
        )
    return VerifiedUpload(key=key, fields=dict(fields))


def _check_condition(condition: Any, values: Mapping[str, str], file_size: int) -> str:
    """Checks one condition; returns the (lower-case) field name it covers."""
    if isinstance(condition, dict) and len(condition) == 1:
        ((name, expected),) = condition.items()
        return _compare("eq", name.lower(), str(expected), values, condition)
    if isinstance(condition, list) and len(condition) == 3:
        operator, name, expected = condition
        if operator == "content-length-range":
            low, high = int(name), int(expected)
            if file_size > high:
                raise PolicyViolation(
                    400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"
                )
            if file_size < low:
                raise PolicyViolation(
                    400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size"
                )
            return "content-length-range"
        if operator in ("eq", "starts-with") and isinstance(name, str) and name.startswith("$"):
            return _compare(operator, name[1:].lower(), str(expected), values, condition)
    raise PolicyViolation(400, "InvalidPolicyDocument", f"Invalid Policy: Invalid Condition: {condition!r}")


def _compare(operator: str, name: str, expected: str, values: Mapping[str, str], condition: Any) -> str:
    actual = values.get(name)
    ok = actual is not None and (actual == expected if operator == "eq" else actual.startswith(expected))
    if not ok:
        raise PolicyViolation(
            403,
            "AccessDenied",
            f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}",
        )
    return name


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise PolicyViolation(400, "InvalidArgument", f"Bucket POST must contain a field named '{name}'.")
    return value

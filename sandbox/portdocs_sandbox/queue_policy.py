"""Evaluates an SQS queue policy for one request, as SQS does before it accepts a message: moto
stores queue policies but never applies them, so without this the sandbox would accept a message
from anyone.

Written by hand because no maintained Python library evaluates IAM resource policies (moto's own
evaluator covers identity policies and ignores conditions' effects; IAM's policy simulator is an
AWS API). It covers the policy grammar template.yaml uses and refuses any other condition
operator rather than guess at it.
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class Decision(enum.Enum):
    ALLOWED = "allowed"  # an Allow matched and no Deny did
    DENIED = "denied"  # a Deny matched: nothing else can allow the request
    NOT_ALLOWED_HERE = "not allowed by the queue policy"  # only an identity policy of the same account could


class UnsupportedPolicy(ValueError):
    """The policy uses grammar this evaluator does not implement."""


@dataclass(frozen=True)
class Request:
    action: str  # e.g. sqs:SendMessage
    queue_arn: str
    principal_arn: str | None = None  # an IAM role or user; None for a service principal
    service: str | None = None  # e.g. s3.amazonaws.com
    secure_transport: bool = True
    context: Mapping[str, str] = field(default_factory=dict)  # e.g. aws:SourceArn, aws:SourceAccount

    def value(self, key: str) -> str | None:
        if key == "aws:PrincipalArn":
            return self.principal_arn
        if key == "aws:SecureTransport":
            return "true" if self.secure_transport else "false"
        if key == "aws:PrincipalIsAWSService":
            return "true" if self.service else "false"
        return self.context.get(key)


def evaluate(policy: Mapping[str, Any], request: Request) -> Decision:
    allowed = False
    for statement in _as_list(policy.get("Statement", [])):
        if not _applies(statement, request):
            continue
        if statement["Effect"] == "Deny":
            return Decision.DENIED
        allowed = True
    return Decision.ALLOWED if allowed else Decision.NOT_ALLOWED_HERE


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    return (
        _principal_matches(statement.get("Principal"), request)
        and any(_like(pattern, request.action) for pattern in _as_list(statement.get("Action", [])))
        and any(_like(pattern, request.queue_arn) for pattern in _as_list(statement.get("Resource", "*")))
        and all(
            _condition_holds(operator, key, _as_list(values), request)
            for operator, block in statement.get("Condition", {}).items()
            for key, values in block.items()
        )
    )


def _principal_matches(principal: Any, request: Request) -> bool:
    if principal == "*" or principal == {"AWS": "*"}:
        return True
    if not isinstance(principal, Mapping):
        raise UnsupportedPolicy(f"principal {principal!r}")
    if request.service is not None:
        return request.service in _as_list(principal.get("Service", []))
    return request.principal_arn in _as_list(principal.get("AWS", []))


def _like(pattern: str, value: str) -> bool:
    """IAM's wildcards: * for any run of characters, ? for one; case-sensitive."""
    return fnmatch.fnmatchcase(value, pattern)


_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda value, expected: value == expected,
    "StringLike": _like,
    "ArnEquals": lambda value, expected: value == expected,
    "ArnLike": _like,
    "Bool": lambda value, expected: value.lower() == str(expected).lower(),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _condition_holds(operator: str, key: str, expected: list[str], request: Request) -> bool:
    value = request.value(key)
    if operator in _NEGATED:
        # IAM: a negated operator holds when the key is absent from the request.
        return value is None or not any(_OPERATORS[_NEGATED[operator]](value, e) for e in expected)
    if operator not in _OPERATORS:
        raise UnsupportedPolicy(f"condition operator {operator}")
    return value is not None and any(_OPERATORS[operator](value, e) for e in expected)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]

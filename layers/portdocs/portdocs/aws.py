"""Shared by the AWS adapters: client construction and the mapping of botocore errors onto the
project's error classes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from portdocs.errors import ConfigurationError, MissingObjectError, PortdocsError, TransientError

if TYPE_CHECKING:  # the type stubs are a development dependency: never imported in a Lambda
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.service_resource import DynamoDBServiceResource
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

# botocore's standard retry mode already retries throttling and 5xx with backoff; the endpoint
# comes from boto3's own AWS_ENDPOINT_URL support (the local sandbox sets it). Tight timeouts and
# three attempts keep one AWS call (about 3 x (2 + 5) s at worst) inside the time a record keeps
# back for its bookkeeping (portdocs.retrying.RESERVE_SECONDS covers the usual case; a sicker AWS
# ends as a transient failure that SQS redelivers). Streaming reads of intake objects apply the
# read timeout per socket read, not to the whole body.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)

# 412/PreconditionFailed: the key no longer holds the ETag the event or request named;
# 405/MethodNotAllowed: the version named is a delete marker (S3 answers a HEAD on one so).
_MISSING = {
    "404",
    "405",
    "412",
    "NoSuchKey",
    "NoSuchVersion",
    "NotFound",
    "NoSuchBucket",
    "PreconditionFailed",
    "MethodNotAllowed",
}
_DENIED = {
    "403",
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ResourceNotFoundException",
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
    "KMS.AccessDeniedException",
}


# Clients of one function should come from one session: every new session parses botocore's
# endpoint and service data again, about 50 ms a client on a cold start. Clients are thread-safe, a
# session is not: make them all before records run side by side. One function per service, so
# that each client has its type.


def s3(session: boto3.session.Session) -> S3Client:
    return session.client("s3", config=CLIENT_CONFIG)


def sqs(session: boto3.session.Session | None = None) -> SQSClient:
    return (session or boto3.session.Session()).client("sqs", config=CLIENT_CONFIG)


def dynamodb(session: boto3.session.Session) -> DynamoDBClient:
    return session.client("dynamodb", config=CLIENT_CONFIG)


def dynamodb_resource(session: boto3.session.Session) -> DynamoDBServiceResource:
    return session.resource("dynamodb", config=CLIENT_CONFIG)


def events(session: boto3.session.Session) -> EventBridgeClient:
    return session.client("events", config=CLIENT_CONFIG)


def sns(session: boto3.session.Session) -> SNSClient:
    return session.client("sns", config=CLIENT_CONFIG)


def secretsmanager() -> SecretsManagerClient:
    """A session of its own: made on first use, maybe on a record's thread."""
    return boto3.session.Session().client("secretsmanager", config=CLIENT_CONFIG)


def translate(error: BotoCoreError | ClientError, action: str) -> PortdocsError:
    """Missing objects are the document's problem; denied or missing infrastructure is the
    deployment's; anything else (throttling that outlived botocore's retries, 5xx, network) may
    pass."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _MISSING:
            return MissingObjectError(
                f"{action}: the object does not exist (or changed since it was announced)"
            )
        if code in _DENIED:
            return ConfigurationError(f"{action}: {code} (check the stack's resources and permissions)")
        return TransientError(f"{action}: {code or 'AWS error'}")
    return TransientError(f"{action}: {type(error).__name__}")

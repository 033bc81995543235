"""Builds each function's service from the environment, once per execution environment.

Called from the handlers on the first invocation (never at import, so tests can import the
handlers before moto starts); later invocations reuse the clients and HTTP sessions.
"""

from __future__ import annotations

from functools import cache

import boto3

from portdocs import aws
from portdocs.association_queue import AssociationQueue
from portdocs.association_service import AssociationService
from portdocs.config import Settings
from portdocs.idempotency import Idempotency
from portdocs.intake import IntakeStore
from portdocs.ledger import Ledger
from portdocs.outcomes import Outcomes
from portdocs.telnyx import (
    CredentialsProvider,
    SecretCredentials,
    StaticCredentials,
    TelnyxClient,
    TelnyxCredentials,
)
from portdocs.upload_service import UploadService


@cache
def upload_service() -> UploadService:
    settings = Settings.from_environ()
    intake = IntakeStore(aws.client("s3"))
    ledger = _ledger(settings)
    return UploadService(
        settings=settings,
        telnyx=_telnyx(settings),
        intake=intake,
        queue=AssociationQueue(aws.client("sqs"), settings.association_queue_url),
        ledger=ledger,
        outcomes=Outcomes(ledger, intake, settings.intake_bucket),
        idempotency=_idempotency(settings),
    )


@cache
def association_service() -> AssociationService:
    settings = Settings.from_environ()
    ledger = _ledger(settings)
    intake = IntakeStore(aws.client("s3"))
    return AssociationService(
        settings=settings,
        telnyx=_telnyx(settings),
        intake=intake,
        ledger=ledger,
        outcomes=Outcomes(ledger, intake, settings.intake_bucket),
        idempotency=_idempotency(settings),
    )


def _telnyx(settings: Settings) -> TelnyxClient:
    return TelnyxClient(
        base_url=settings.telnyx_api_base_url,
        credentials=_credentials(settings),
        allowed_upload_hosts=settings.allowed_upload_hosts,
    )


def _credentials(settings: Settings) -> CredentialsProvider:
    if settings.telnyx_credentials_secret_arn:
        return SecretCredentials(settings.telnyx_credentials_secret_arn)
    local = settings.local_credentials
    credentials = TelnyxCredentials.from_mapping(
        {"api_user": local.api_user, "api_token": local.api_token, "api_key": local.api_key},
        "TELNYX_API_USER/TELNYX_API_TOKEN or TELNYX_API_KEY (no TELNYX_CREDENTIALS_SECRET_ARN set)",
    )
    return StaticCredentials(credentials)


def _ledger(settings: Settings) -> Ledger:
    resource = boto3.session.Session().resource("dynamodb", config=aws.CLIENT_CONFIG)
    return Ledger(resource.Table(settings.documents_table))


def _idempotency(settings: Settings) -> Idempotency:
    return Idempotency(settings.idempotency_table, settings.idempotency_ttl_seconds, aws.client("dynamodb"))

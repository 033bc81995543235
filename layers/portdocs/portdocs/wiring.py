"""Builds each function's service from the environment, once per execution environment.

Called from the handlers on the first invocation (never at import, so tests can import the
handlers before moto starts); later invocations reuse the clients and HTTP sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import boto3

from portdocs import aws
from portdocs.config import Settings
from portdocs.events import DocumentEvents
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

if TYPE_CHECKING:
    from portdocs.association_service import AssociationService
    from portdocs.resend import Resender
    from portdocs.sweeper import Sweeper
    from portdocs.upload_service import UploadService

# Each factory imports its own service inside it, so a function's cold start imports only the
# service it runs.


@cache
def upload_service() -> UploadService:
    from portdocs.association_queue import AssociationQueue
    from portdocs.upload_service import UploadService

    parts = _Parts.build(Settings.from_environ())
    return UploadService(
        settings=parts.settings,
        telnyx=_telnyx(parts.settings),
        intake=parts.intake,
        queue=AssociationQueue(aws.client("sqs", parts.session), parts.settings.association_queue_url),
        ledger=parts.ledger,
        outcomes=parts.outcomes,
        idempotency=parts.idempotency(),
    )


@cache
def association_service() -> AssociationService:
    from portdocs.association_service import AssociationService

    parts = _Parts.build(Settings.from_environ())
    return AssociationService(
        settings=parts.settings,
        telnyx=_telnyx(parts.settings),
        intake=parts.intake,
        ledger=parts.ledger,
        outcomes=parts.outcomes,
        idempotency=parts.idempotency(),
        resender=parts.resender(),
    )


@cache
def sweeper() -> Sweeper:
    from portdocs.sweeper import Sweeper

    parts = _Parts.build(Settings.from_environ())
    return Sweeper(
        ledger=parts.ledger,
        intake=parts.intake,
        outcomes=parts.outcomes,
        resender=parts.resender(),
        stuck_after_seconds=parts.settings.stuck_after_seconds,
    )


@dataclass(frozen=True)
class _Parts:
    """What every function's service is built from; one boto3 session makes every client (see
    aws.client). The Telnyx client and the idempotency store are the pipeline's alone: the
    sweeper, which calls neither, does not build them."""

    settings: Settings
    session: boto3.session.Session
    intake: IntakeStore
    ledger: Ledger
    outcomes: Outcomes

    def idempotency(self) -> Idempotency:
        # Not the resource's own client: boto3 makes that one serialize plain Python values,
        # and Powertools sends DynamoDB-typed ones.
        return Idempotency(
            self.settings.idempotency_table,
            self.settings.idempotency_ttl_seconds,
            aws.client("dynamodb", self.session),
        )

    def resender(self) -> Resender:
        from portdocs.resend import Queue, Resender

        return Resender(
            aws.client("sqs", self.session),
            {Queue.INTAKE: self.settings.intake_queue_url, Queue.ASSOCIATION: self.settings.association_queue_url},
        )

    @classmethod
    def build(cls, settings: Settings) -> _Parts:
        session = boto3.session.Session()
        dynamodb = session.resource("dynamodb", config=aws.CLIENT_CONFIG)
        intake = IntakeStore(aws.client("s3", session))
        ledger = Ledger(dynamodb.Table(settings.documents_table))
        return cls(
            settings=settings,
            session=session,
            intake=intake,
            ledger=ledger,
            outcomes=Outcomes(
                ledger,
                intake,
                settings.intake_bucket,
                DocumentEvents(aws.client("events", session), settings.event_bus_name),
            ),
        )


def _telnyx(settings: Settings) -> TelnyxClient:
    return TelnyxClient(
        base_url=settings.telnyx_api_base_url,
        credentials=_credentials(settings),
        allowed_upload_hosts=settings.allowed_upload_hosts,
    )


def _credentials(settings: Settings) -> CredentialsProvider:
    if settings.telnyx_credentials_secret_arn:
        # A session of its own: the client is made on first use, maybe on a record's thread.
        return SecretCredentials(settings.telnyx_credentials_secret_arn, lambda: aws.client("secretsmanager"))
    local = settings.local_credentials
    credentials = TelnyxCredentials.from_mapping(
        {"api_user": local.api_user, "api_token": local.api_token, "api_key": local.api_key},
        "TELNYX_API_USER/TELNYX_API_TOKEN or TELNYX_API_KEY (no TELNYX_CREDENTIALS_SECRET_ARN set)",
    )
    return StaticCredentials(credentials)

"""Builds each function's service from the environment, once per execution environment.

Called from the handlers on the first invocation (never at import, so tests can import the
handlers before moto starts); later invocations reuse the clients and HTTP sessions. Each factory
imports its own service, and the Telnyx adapters and flows only where they are used, so a
function's cold start imports only what it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import boto3

from portdocs import aws
from portdocs.config import Settings, check_content_types_known
from portdocs.events import DocumentEvents, EventBus
from portdocs.intake import IntakeStore
from portdocs.ledger import Ledger
from portdocs.lifecycle import Lifecycle
from portdocs.notifications_queue import NotificationsQueue
from portdocs.observability import logger
from portdocs.orders import Orders

if TYPE_CHECKING:
    from portdocs.association_service import AssociationService
    from portdocs.flows import Flows
    from portdocs.idempotency import Idempotency
    from portdocs.poller import Poller
    from portdocs.receiver import Receiver
    from portdocs.resend import Resender
    from portdocs.sweeper import Sweeper
    from portdocs.telnyx_credentials import CredentialsProvider
    from portdocs.tracker import Tracker
    from portdocs.upload_service import UploadService
    from portdocs.webhook_signature import WebhookKey


@cache
def upload_service() -> UploadService:
    from portdocs.association_queue import AssociationQueue
    from portdocs.file_check import clear_leftovers
    from portdocs.upload_service import UploadService

    parts = _Parts.build(Settings.from_environ())
    check_content_types_known(parts.settings)
    clear_leftovers()
    return UploadService(
        settings=parts.settings,
        flows=parts.flows(),
        intake=parts.intake,
        queue=AssociationQueue(aws.sqs(parts.session), parts.settings.association_queue_url),
        lifecycle=parts.lifecycle,
        idempotency=parts.idempotency(),
    )


@cache
def association_service() -> AssociationService:
    from portdocs.association_service import AssociationService

    parts = _Parts.build(Settings.from_environ())
    return AssociationService(
        settings=parts.settings,
        flows=parts.flows(),
        intake=parts.intake,
        ledger=parts.ledger,
        lifecycle=parts.lifecycle,
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
        lifecycle=parts.lifecycle,
        resender=parts.resender(),
        stuck_after_seconds=parts.settings.stuck_after_seconds,
    )


@cache
def tracker() -> Tracker:
    from portdocs.notices import Notices
    from portdocs.order_events import OrderEvents
    from portdocs.tracker import Tracker

    parts = _Parts.build(Settings.from_environ())
    return Tracker(
        orders=parts.orders,
        ledger=parts.ledger,
        events=OrderEvents(parts.bus),
        notices=Notices(
            aws.sns(parts.session), parts.settings.action_topic_arn, parts.settings.intake_bucket
        ),
    )


@cache
def poller() -> Poller:
    from portdocs.poller import Poller
    from portdocs.telnyx_http import TelnyxHttp
    from portdocs.telnyx_porting import PortingApi

    parts = _Parts.build(Settings.from_environ())
    return Poller(
        api=PortingApi(TelnyxHttp(parts.settings.telnyx_api_base_url, _credentials(parts.settings))),
        orders=parts.orders,
        ledger=parts.ledger,
        queue=parts.notifications_queue(),
    )


@cache
def receiver() -> Receiver:
    """Made with no Telnyx client, ledger or flows: the public endpoint holds only what it uses."""
    from portdocs.receiver import Receiver

    settings = Settings.from_environ()
    session = boto3.session.Session()
    return Receiver(
        key=_webhook_key(settings.webhook_key_secret_arn),
        queue=NotificationsQueue(aws.sqs(session), settings.notifications_queue_url),
    )


def clear_caches() -> None:
    """Every service is made anew on its next use, as in a new execution environment (tests)."""
    for made_once in (upload_service, association_service, sweeper, tracker, poller, receiver):
        made_once.cache_clear()


@dataclass(frozen=True)
class _Parts:
    """What every function's service is built from; one boto3 session makes every client (see
    portdocs.aws). The flows (and their Telnyx client) and the idempotency store are the pipeline's
    alone: the sweeper, which calls neither, does not build them."""

    settings: Settings
    session: boto3.session.Session
    intake: IntakeStore
    ledger: Ledger
    lifecycle: Lifecycle
    orders: Orders
    bus: EventBus

    def flows(self) -> Flows:
        from portdocs.flows import FlowParts, Flows
        from portdocs.telnyx_http import TelnyxHttp

        http = TelnyxHttp(self.settings.telnyx_api_base_url, _credentials(self.settings))
        return Flows(FlowParts(http, self.ledger, self.settings.allowed_upload_hosts))

    def idempotency(self) -> Idempotency:
        from portdocs.idempotency import Idempotency

        # Not the resource's own client: boto3 makes that one serialize plain Python values,
        # and Powertools sends DynamoDB-typed ones.
        return Idempotency(
            self.settings.idempotency_table,
            self.settings.idempotency_ttl_seconds,
            aws.dynamodb(self.session),
        )

    def notifications_queue(self) -> NotificationsQueue:
        return NotificationsQueue(aws.sqs(self.session), self.settings.notifications_queue_url)

    def resender(self) -> Resender:
        from portdocs.resend import Queue, Resender

        return Resender(
            aws.sqs(self.session),
            {
                Queue.INTAKE: self.settings.intake_queue_url,
                Queue.ASSOCIATION: self.settings.association_queue_url,
            },
        )

    @classmethod
    def build(cls, settings: Settings) -> _Parts:
        session = boto3.session.Session()
        dynamodb = aws.dynamodb_resource(session)
        intake = IntakeStore(aws.s3(session))
        ledger = Ledger(dynamodb.Table(settings.documents_table))
        bus = EventBus(aws.events(session), settings.event_bus_name)
        orders = Orders(aws.dynamodb(session), settings.porting_orders_table)
        return cls(
            settings=settings,
            session=session,
            intake=intake,
            ledger=ledger,
            lifecycle=Lifecycle(ledger, intake, settings.intake_bucket, DocumentEvents(bus), orders),
            orders=orders,
            bus=bus,
        )


def _credentials(settings: Settings) -> CredentialsProvider:
    from portdocs.telnyx_credentials import SecretCredentials, StaticCredentials

    if settings.telnyx_credentials_secret_arn:
        # A session of its own: the client is made on first use, maybe on a record's thread.
        return SecretCredentials(settings.telnyx_credentials_secret_arn, aws.secretsmanager)
    return StaticCredentials(
        settings.local_credentials.checked(
            "TELNYX_API_USER/TELNYX_API_TOKEN or TELNYX_API_KEY (no TELNYX_CREDENTIALS_SECRET_ARN set)"
        )
    )


def _webhook_key(secret_arn: str | None) -> Callable[[], WebhookKey | None]:
    """Telnyx's webhook public key from its secret ({"public_key": "<base64>"}), cached five minutes
    (Powertools parameters): a key replaced in the portal is taken within that. None (every webhook
    refused) while the secret is unset, empty or not a key; TransientError while it cannot be read."""
    from aws_lambda_powertools.utilities import parameters

    from portdocs.errors import TransientError
    from portdocs.webhook_signature import SignatureRefused, WebhookKey

    def key() -> WebhookKey | None:
        if not secret_arn:
            return None
        try:
            value = parameters.get_secret(secret_arn, transform="json", max_age=300)
        except parameters.exceptions.GetParameterError as error:
            raise TransientError(f"reading the webhook public key: {type(error).__name__}") from None
        except parameters.exceptions.TransformParameterError:
            value = None
        try:
            return (
                WebhookKey.from_base64(str(value["public_key"]))
                if value and value.get("public_key")
                else None
            )
        except (SignatureRefused, TypeError, AttributeError) as error:
            logger.error("the webhook public key is not a key", extra={"error": type(error).__name__})
            return None

    return key

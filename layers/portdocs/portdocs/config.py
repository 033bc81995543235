"""One frozen settings object, read from the environment once and validated at cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from portdocs.errors import PermanentError
from portdocs.formats import CONTENT_TYPES
from portdocs.telnyx_credentials import TelnyxCredentials
from portdocs.urls import secure_url

DEFAULT_API_BASE_URL = "https://api.telnyx.com"
DEFAULT_ALLOWED_UPLOAD_HOSTS = ("files-service-prod.s3.amazonaws.com",)
DEFAULT_MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
# Every format portdocs takes (portdocs.formats); the setting may narrow it, never widen it.
DEFAULT_ALLOWED_CONTENT_TYPES = CONTENT_TYPES
# Idempotency must outlive every way a message can come back: copies handed back for up to a day
# (portdocs.redelivery.MAX_AGE_SECONDS), then 4 days on a queue and 14 in its dead-letter queue
# (template.yaml), redriven on the last day; 21 days leaves 2 of margin.
# tests/unit/test_template.py holds this against the template's retention periods.
DEFAULT_IDEMPOTENCY_TTL_SECONDS = 21 * 24 * 3600
# Records of one batch in flight at once. At most 10: requests keeps 10 connections per host, and
# S3 and SQS batches of more than 10 records are not what this pipeline is tuned for.
DEFAULT_RECORD_CONCURRENCY = 5
MAX_RECORD_CONCURRENCY = 10
# The sweeper's threshold: queues' visibility timeouts are minutes, so an hour without a change
# means a document is not in flight any more.
DEFAULT_STUCK_AFTER_SECONDS = 3600
# The first delay of a failing record handed back (portdocs.redelivery); later ones double, up to
# 15 times this. Only the sandbox and the tests shorten it, as they shorten visibility timeouts.
DEFAULT_BACKOFF_BASE_SECONDS = 60


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


@dataclass(frozen=True)
class Settings:
    telnyx_api_base_url: str
    telnyx_credentials_secret_arn: str | None
    # Read straight from the environment, for runs with no Secrets Manager ARN (checked when used).
    local_credentials: TelnyxCredentials
    association_queue_url: str
    intake_bucket: str
    documents_table: str
    idempotency_table: str
    allowed_upload_hosts: tuple[str, ...]
    max_document_bytes: int
    allowed_content_types: tuple[str, ...]
    idempotency_ttl_seconds: int
    record_concurrency: int
    event_bus_name: str
    intake_queue_url: str
    stuck_after_seconds: int
    backoff_base_seconds: int
    # Following porting orders (docs/orders.md).
    notifications_queue_url: str
    porting_orders_table: str
    action_topic_arn: str
    # The secret holding Telnyx's webhook public key; none: every webhook is refused (fail closed).
    webhook_key_secret_arn: str | None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        base_url = env.get("TELNYX_API_BASE_URL", DEFAULT_API_BASE_URL).rstrip("/")
        try:
            # The API key travels to it: https, as template.yaml's AllowedPattern also demands.
            secure_url(base_url)
        except PermanentError as error:
            raise SettingsError(f"TELNYX_API_BASE_URL: {error}") from None
        return cls(
            telnyx_api_base_url=base_url,
            telnyx_credentials_secret_arn=env.get("TELNYX_CREDENTIALS_SECRET_ARN") or None,
            local_credentials=TelnyxCredentials(
                api_user=env.get("TELNYX_API_USER") or None,
                api_token=env.get("TELNYX_API_TOKEN") or None,
                api_key=env.get("TELNYX_API_KEY") or None,
            ),
            association_queue_url=_required(env, "ASSOCIATION_QUEUE_URL"),
            intake_bucket=_required(env, "INTAKE_BUCKET"),
            documents_table=_required(env, "DOCUMENTS_TABLE"),
            idempotency_table=_required(env, "IDEMPOTENCY_TABLE"),
            allowed_upload_hosts=csv_setting(env, "ALLOWED_UPLOAD_HOSTS", DEFAULT_ALLOWED_UPLOAD_HOSTS),
            max_document_bytes=positive_int_setting(env, "MAX_DOCUMENT_BYTES", DEFAULT_MAX_DOCUMENT_BYTES),
            allowed_content_types=csv_setting(env, "ALLOWED_CONTENT_TYPES", DEFAULT_ALLOWED_CONTENT_TYPES),
            idempotency_ttl_seconds=positive_int_setting(
                env, "IDEMPOTENCY_TTL_SECONDS", DEFAULT_IDEMPOTENCY_TTL_SECONDS
            ),
            record_concurrency=positive_int_setting(
                env, "RECORD_CONCURRENCY", DEFAULT_RECORD_CONCURRENCY, maximum=MAX_RECORD_CONCURRENCY
            ),
            event_bus_name=env.get("EVENT_BUS_NAME", "").strip() or "default",
            intake_queue_url=_required(env, "INTAKE_QUEUE_URL"),
            stuck_after_seconds=positive_int_setting(env, "STUCK_AFTER_SECONDS", DEFAULT_STUCK_AFTER_SECONDS),
            backoff_base_seconds=positive_int_setting(
                env,
                "BACKOFF_BASE_SECONDS",
                DEFAULT_BACKOFF_BASE_SECONDS,
                maximum=DEFAULT_BACKOFF_BASE_SECONDS,
            ),
            notifications_queue_url=_required(env, "NOTIFICATIONS_QUEUE_URL"),
            porting_orders_table=_required(env, "PORTING_ORDERS_TABLE"),
            action_topic_arn=_required(env, "ACTION_TOPIC_ARN"),
            webhook_key_secret_arn=env.get("WEBHOOK_KEY_SECRET_ARN") or None,
        )


def check_content_types_known(settings: Settings) -> None:
    """The uploader's own check, at its cold start (the other functions never read the setting,
    so a stack upgraded with an old list keeps following orders while the uploader says why it
    cannot start)."""
    unknown = [known for known in settings.allowed_content_types if known not in CONTENT_TYPES]
    if unknown:
        raise SettingsError(
            f"environment variable ALLOWED_CONTENT_TYPES names {', '.join(unknown)}, which portdocs "
            f"cannot check; it takes {', '.join(CONTENT_TYPES)}"
        )


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is required and is not set")
    return value


def csv_setting(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    values = tuple(item.strip().lower() for item in raw.split(",") if item.strip())
    if not values:
        raise SettingsError(f"environment variable {name} must list at least one value")
    return values


def positive_int_setting(env: Mapping[str, str], name: str, default: int, maximum: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"environment variable {name} must be an integer, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"environment variable {name} must be positive, got {value}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"environment variable {name} must be at most {maximum}, got {value}")
    return value

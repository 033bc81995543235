from __future__ import annotations

import pytest

from portdocs.config import Settings, SettingsError, check_content_types_known

REQUIRED = {
    "ASSOCIATION_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/q",
    "INTAKE_BUCKET": "intake",
    "DOCUMENTS_TABLE": "documents",
    "IDEMPOTENCY_TABLE": "idempotency",
    "INTAKE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/intake",
    "NOTIFICATIONS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/notifications",
    "PORTING_ORDERS_TABLE": "orders",
    "ACTION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:actions",
}


def test_defaults_follow_the_documented_contract():
    settings = Settings.from_environ(REQUIRED)
    assert settings.telnyx_api_base_url == "https://api.telnyx.com"
    assert settings.allowed_upload_hosts == ("files-service-prod.s3.amazonaws.com",)
    assert settings.max_document_bytes == 20 * 1024 * 1024
    assert settings.allowed_content_types == (
        "application/pdf",
        "image/jpeg",
        "image/png",
        "image/tiff",
        "image/heic",
    )
    assert settings.telnyx_credentials_secret_arn is None
    assert settings.record_concurrency == 5


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_a_missing_setting_is_named(missing):
    environ = {k: v for k, v in REQUIRED.items() if k != missing}
    with pytest.raises(SettingsError, match=missing):
        Settings.from_environ(environ)


@pytest.mark.parametrize(("value", "message"), [("20MB", "must be an integer"), ("0", "must be positive")])
def test_a_malformed_number_is_named(value, message):
    with pytest.raises(SettingsError, match=f"MAX_DOCUMENT_BYTES {message}"):
        Settings.from_environ({**REQUIRED, "MAX_DOCUMENT_BYTES": value})


@pytest.mark.parametrize(("value", "message"), [("11", "must be at most 10"), ("0", "must be positive")])
def test_record_concurrency_is_bounded(value, message):
    with pytest.raises(SettingsError, match=f"RECORD_CONCURRENCY {message}"):
        Settings.from_environ({**REQUIRED, "RECORD_CONCURRENCY": value})


def test_lists_are_trimmed_and_lowercased():
    settings = Settings.from_environ(
        {**REQUIRED, "ALLOWED_UPLOAD_HOSTS": " A.example.com , 127.0.0.1:9000 ,"}
    )
    assert settings.allowed_upload_hosts == ("a.example.com", "127.0.0.1:9000")


def test_credentials_never_appear_in_the_settings_repr():
    settings = Settings.from_environ(
        {**REQUIRED, "TELNYX_API_USER": "me@example.com", "TELNYX_API_TOKEN": "s3cr3t"}
    )
    assert "s3cr3t" not in repr(settings) and "me@example.com" not in repr(settings)
    assert settings.local_credentials.api_token == "s3cr3t"


@pytest.mark.parametrize(
    "base_url",
    [
        "api.telnyx.com",
        "http://api.telnyx.com",
        "http://10.0.0.5:8080",
        "https://user:pass@api.telnyx.com",
        "https://",
    ],
)
def test_the_api_key_is_never_sent_but_over_https(base_url):
    with pytest.raises(SettingsError, match="TELNYX_API_BASE_URL"):
        Settings.from_environ({**REQUIRED, "TELNYX_API_BASE_URL": base_url})


def test_plain_http_is_allowed_to_a_loopback_emulator_only():
    settings = Settings.from_environ({**REQUIRED, "TELNYX_API_BASE_URL": "http://127.0.0.1:8080/"})
    assert settings.telnyx_api_base_url == "http://127.0.0.1:8080"


def test_allowed_content_types_may_narrow_the_formats_but_not_name_one_portdocs_cannot_check():
    narrowed = Settings.from_environ({**REQUIRED, "ALLOWED_CONTENT_TYPES": "application/pdf, image/tiff"})
    assert narrowed.allowed_content_types == ("application/pdf", "image/tiff")
    check_content_types_known(narrowed)
    widened = Settings.from_environ({**REQUIRED, "ALLOWED_CONTENT_TYPES": "application/pdf,application/zip"})
    with pytest.raises(SettingsError, match="names application/zip, which portdocs cannot check"):
        check_content_types_known(widened)

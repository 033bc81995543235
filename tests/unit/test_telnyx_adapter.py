"""The Telnyx adapter's mapping of HTTP outcomes, against real responses from a loopback server."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import boto3
import pytest
import requests
from moto import mock_aws

from portdocs.documents import DocumentType, DraftTarget
from portdocs.errors import ConfigurationError, PermanentError, TransientError
from portdocs.messages import AssociationRequest
from portdocs.retrying import Deadline
from portdocs.telnyx import (
    StaticCredentials,
    TelnyxClient,
    TelnyxCredentials,
    UploadForm,
    classify_api_failure,
    retry_after_seconds,
)
from portdocs_sandbox.telnyx_emulator import Fault, TelnyxEmulator
from tests.support import PORT_REQUEST, SUB_REQUEST


def response(status: int, body: bytes = b"", **headers: str) -> requests.Response:
    made = requests.Response()
    made.status_code = status
    made._content = body
    made.headers.update(headers)
    return made


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, PermanentError),
        (404, PermanentError),
        (422, PermanentError),
        (401, ConfigurationError),
        (403, ConfigurationError),
        (408, TransientError),
        (409, TransientError),
        (425, TransientError),
        (429, TransientError),
        (500, TransientError),
        (502, TransientError),
        (503, TransientError),
    ],
)
def test_each_status_maps_to_one_error_class(status, kind):
    assert type(classify_api_failure("POST /x", response(status))) is kind


def test_v2_error_body_becomes_the_reason():
    body = (
        b'{"errors": [{"code": "10015", "title": "Invalid url", "detail": "no such file",'
        b' "source": {"pointer": "/url"}}]}'
    )
    error = classify_api_failure("POST /x", response(422, body))
    assert str(error) == "POST /x answered 422: 10015 Invalid url no such file at /url"


def test_undocumented_error_body_is_kept_raw_and_truncated():
    error = classify_api_failure("POST /x", response(400, b"<html>\n  Bad   thing " + b"y" * 1000))
    assert "answered 400: <html> Bad thing yyy" in str(error)
    assert len(str(error)) < 400


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"x-ratelimit-reset": "3"}, 3.0),
        ({"Retry-After": "2", "x-ratelimit-reset": "30"}, 2.0),
        ({"Retry-After": "soon"}, None),
        ({}, None),
        ({"x-ratelimit-reset": "-1"}, None),
    ],
)
def test_retry_after_from_headers(headers, expected):
    assert retry_after_seconds(response(429, **headers)) == expected


def test_retry_after_as_an_http_date():
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after_seconds(response(429, **{"Retry-After": when})) <= 30


def test_credentials_choose_their_header_shape_and_hide_in_repr():
    legacy = TelnyxCredentials(api_user="me@example.com", api_token="tok")
    v2 = TelnyxCredentials(api_key="KEY")
    assert legacy.headers() == {"x-api-user": "me@example.com", "x-api-token": "tok"}
    assert v2.headers() == {"Authorization": "Bearer KEY"}
    assert "tok" not in repr(legacy) and "KEY" not in repr(v2)
    with pytest.raises(ConfigurationError, match="either api_user and api_token, or api_key"):
        TelnyxCredentials.from_mapping({"api_user": "me"}, "the secret")


def test_form_fields_never_appear_in_its_repr_and_location_fallback_encodes_the_key():
    form = UploadForm(
        url="https://files.example.com", fields={"key": "direct-uploads/u/${filename}", "policy": "SECRET"}
    )
    assert "SECRET" not in repr(form)
    assert form.location_for("Concept 8 é.jpg") == "https://files.example.com/direct-uploads%2Fu%2FConcept+8+%C3%A9.jpg"


def ample() -> Deadline:
    return Deadline(at=time.monotonic() + 60)


@pytest.fixture
def client(emulator: TelnyxEmulator) -> TelnyxClient:
    credentials = TelnyxCredentials(api_user="portdocs@example.com", api_token="emulator-token")
    return TelnyxClient(emulator.api_url, StaticCredentials(credentials), (emulator.files_host,))


def test_full_flow_against_the_emulator(client: TelnyxClient, emulator: TelnyxEmulator):
    body = b"%PDF-1.4 streamed " + bytes(100_000)
    form = client.request_upload_form("application/pdf", ample())
    location = client.upload(form, "a b.pdf", io.BytesIO(body), len(body), "application/pdf", ample())
    document_id = client.associate(
        AssociationRequest(DraftTarget(PORT_REQUEST, SUB_REQUEST, DocumentType.LOA), "LOA", location), ample()
    )
    assert emulator.stored_bytes(location) == body
    assert emulator.documents()[0]["id"] == document_id
    assert emulator.calls("files")[0]["fields"][-1] != "file"  # file is not a field: it came last, as a file


def test_form_url_outside_the_allow_list_is_a_configuration_fault(emulator: TelnyxEmulator):
    credentials = TelnyxCredentials(api_key="unused")
    emulator.credentials["api_key"] = "unused"
    strict = TelnyxClient(emulator.api_url, StaticCredentials(credentials), ("files-service-prod.s3.amazonaws.com",))
    with pytest.raises(ConfigurationError, match="refusing Telnyx's upload form"):
        strict.request_upload_form("application/pdf", ample())


def test_dropped_connection_is_transient(client: TelnyxClient, emulator: TelnyxEmulator):
    emulator.inject(Fault(endpoint="upload_requests", drop=True))
    with pytest.raises(TransientError, match="failed: ConnectionError"):
        client.request_upload_form("application/pdf", ample())


def test_a_hanging_server_is_given_up_on_by_the_deadline(client: TelnyxClient, emulator: TelnyxEmulator):
    emulator.inject(Fault(endpoint="upload_requests", latency=5.0))  # well within the 30 s read timeout
    with pytest.raises(TransientError, match="failed: ReadTimeout"):
        client.request_upload_form("application/pdf", Deadline(at=time.monotonic() + 1.5))


def test_refused_form_is_transient_and_oversize_is_permanent(client: TelnyxClient, emulator: TelnyxEmulator):
    emulator.max_upload_bytes = 10
    form = client.request_upload_form("application/pdf", ample())
    with pytest.raises(PermanentError, match="400 EntityTooLarge"):
        client.upload(form, "a.pdf", io.BytesIO(b"x" * 11), 11, "application/pdf", ample())
    tampered = UploadForm(form.url, {**form.fields, "content-type": "image/png"}, form.file_field)
    with pytest.raises(TransientError, match=r"refused the form \(403 AccessDenied"):
        client.upload(tampered, "a.pdf", io.BytesIO(b"x"), 1, "application/pdf", ample())


def test_location_is_derived_from_the_form_when_the_server_sends_none():
    # moto, like some S3-compatible servers, answers a form upload 204 without a Location header.
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="files-service-moto")
        post = s3.generate_presigned_post(Bucket="files-service-moto", Key="direct-uploads/u1/${filename}")
        form = UploadForm(url=post["url"], fields=post["fields"])
        client = TelnyxClient("https://api.invalid", StaticCredentials(TelnyxCredentials(api_key="k")), ())
        body = b"%PDF-1.4 moto"

        location = client.upload(form, "a b+c.pdf", io.BytesIO(body), len(body), "application/pdf", ample())

        assert location == "https://files-service-moto.s3.amazonaws.com/direct-uploads%2Fu1%2Fa+b%2Bc.pdf"
        stored = s3.get_object(Bucket="files-service-moto", Key="direct-uploads/u1/a b+c.pdf")["Body"].read()
        assert stored == body

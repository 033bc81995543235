"""The Telnyx adapter's mapping of HTTP outcomes, against real responses from a loopback server."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
import requests
from botocore.exceptions import IncompleteReadError
from moto import mock_aws

from portdocs.documents import DocumentType, DraftTarget
from portdocs.errors import AmbiguousError, ConfigurationError, PermanentError, TransientError
from portdocs.retrying import Deadline
from portdocs.telnyx_credentials import StaticCredentials, TelnyxCredentials
from portdocs.telnyx_http import ApiCall, RateLimitGate, TelnyxHttp, classify_api_failure, retry_after_seconds
from portdocs.telnyx_legacy import DraftAssociation, DraftPortRequestsApi, UploadForm
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
    assert type(classify_api_failure(response(status), ApiCall("POST", "/x"))) is kind


def test_v2_error_body_becomes_the_reason():
    body = (
        b'{"errors": [{"code": "10015", "title": "Invalid url", "detail": "no such file",'
        b' "source": {"pointer": "/url"}}]}'
    )
    error = classify_api_failure(response(422, body), ApiCall("POST", "/x"))
    assert str(error) == "POST /x answered 422: 10015 Invalid url no such file at /url"


def test_undocumented_error_body_is_kept_raw_and_truncated():
    error = classify_api_failure(
        response(400, b"<html>\n  Bad   thing " + b"y" * 1000), ApiCall("POST", "/x")
    )
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
    assert (
        form.location_for("Concept 8 é.jpg")
        == "https://files.example.com/direct-uploads%2Fu%2FConcept+8+%C3%A9.jpg"
    )


def draft_api(
    base_url: str, credentials: StaticCredentials, hosts: tuple[str, ...], gate: RateLimitGate | None = None
) -> DraftPortRequestsApi:
    return DraftPortRequestsApi(TelnyxHttp(base_url, credentials, gate=gate), hosts)


def ample() -> Deadline:
    return Deadline(at=time.monotonic() + 60)


@pytest.fixture
def client(emulator: TelnyxEmulator) -> DraftPortRequestsApi:
    credentials = TelnyxCredentials(api_user="portdocs@example.com", api_token="emulator-token")
    return draft_api(emulator.api_url, StaticCredentials(credentials), (emulator.files_host,))


def test_full_flow_against_the_emulator(client: DraftPortRequestsApi, emulator: TelnyxEmulator):
    body = b"%PDF-1.4 streamed " + bytes(100_000)
    form = client.request_upload_form("application/pdf", ample())
    location = client.upload(form, "a b.pdf", io.BytesIO(body), len(body), "application/pdf", ample())
    document_id = client.associate(
        DraftAssociation(DraftTarget(PORT_REQUEST, SUB_REQUEST, DocumentType.LOA), "LOA", location),
        ample(),
    )
    assert emulator.stored_bytes(location) == body
    assert emulator.documents()[0]["id"] == document_id
    assert emulator.calls("files")[0]["fields"][-1] != "file"  # file is not a field: it came last, as a file


def test_form_url_outside_the_allow_list_is_a_configuration_fault(emulator: TelnyxEmulator):
    credentials = TelnyxCredentials(api_key="unused")
    emulator.credentials["api_key"] = "unused"
    strict = draft_api(
        emulator.api_url, StaticCredentials(credentials), ("files-service-prod.s3.amazonaws.com",)
    )
    with pytest.raises(ConfigurationError, match="refusing Telnyx's upload form"):
        strict.request_upload_form("application/pdf", ample())


def test_dropped_connection_is_transient(client: DraftPortRequestsApi, emulator: TelnyxEmulator):
    emulator.inject(Fault(endpoint="upload_requests", drop=True))
    with pytest.raises(TransientError, match="failed: ConnectionError"):
        client.request_upload_form("application/pdf", ample())


def test_a_hanging_server_is_given_up_on_by_the_deadline(
    client: DraftPortRequestsApi, emulator: TelnyxEmulator
):
    emulator.inject(Fault(endpoint="upload_requests", latency=5.0))  # well within the 30 s read timeout
    with pytest.raises(TransientError, match="failed: ReadTimeout"):
        client.request_upload_form("application/pdf", Deadline(at=time.monotonic() + 1.5))


def test_refused_form_is_transient_and_oversize_is_permanent(
    client: DraftPortRequestsApi, emulator: TelnyxEmulator
):
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
        client = draft_api(
            "https://api.invalid",
            StaticCredentials(TelnyxCredentials(api_key="k")),
            ("files-service-moto.s3.amazonaws.com",),
        )
        body = b"%PDF-1.4 moto"

        location = client.upload(form, "a b+c.pdf", io.BytesIO(body), len(body), "application/pdf", ample())

        assert location == "https://files-service-moto.s3.amazonaws.com/direct-uploads%2Fu1%2Fa+b%2Bc.pdf"
        stored = s3.get_object(Bucket="files-service-moto", Key="direct-uploads/u1/a b+c.pdf")["Body"].read()
        assert stored == body


@pytest.mark.parametrize(
    ("status", "headers", "kind"),
    [
        (500, {}, AmbiguousError),
        (502, {}, AmbiguousError),
        (504, {}, AmbiguousError),
        (503, {}, AmbiguousError),
        (409, {}, AmbiguousError),
        (503, {"Retry-After": "3"}, TransientError),  # told: come back later, nothing done
        (429, {}, TransientError),
        (408, {}, TransientError),
        (425, {}, TransientError),
    ],
)
def test_a_non_idempotent_call_is_ambiguous_unless_the_answer_says_it_was_not_acted_on(status, headers, kind):
    assert (
        type(classify_api_failure(response(status, **headers), ApiCall("POST", "/x", repeatable=False)))
        is kind
    )
    assert type(classify_api_failure(response(status, **headers), ApiCall("POST", "/x"))) is TransientError


def test_a_missing_upload_endpoint_is_configuration_but_a_missing_draft_is_the_documents_fault():
    assert type(
        classify_api_failure(response(404), ApiCall("POST", "/files/upload_requests", names_a_resource=False))
    ) is (ConfigurationError)
    assert (
        type(classify_api_failure(response(404), ApiCall("POST", "/x/supporting_documents")))
        is PermanentError
    )
    assert type(classify_api_failure(response(405), ApiCall("POST", "/x"))) is ConfigurationError


def association() -> DraftAssociation:
    return DraftAssociation(DraftTarget(PORT_REQUEST, SUB_REQUEST, DocumentType.LOA), "LOA", "https://f/x")


def test_a_reset_after_the_association_was_sent_is_ambiguous(
    client: DraftPortRequestsApi, emulator: TelnyxEmulator
):
    emulator.inject(Fault(endpoint="supporting_documents", drop=True))
    with pytest.raises(AmbiguousError, match="may have recorded it"):
        client.associate(association(), ample())


def test_an_association_that_never_connected_is_not_ambiguous():
    with socket.socket() as probe:  # a port nobody listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refused = draft_api(f"http://127.0.0.1:{port}", StaticCredentials(TelnyxCredentials(api_key="k")), ())
    with pytest.raises(TransientError) as raised:
        refused.associate(association(), ample())
    assert not isinstance(raised.value, AmbiguousError)


def test_a_429_makes_the_next_call_of_any_record_wait(emulator: TelnyxEmulator):
    credentials = StaticCredentials(
        TelnyxCredentials(api_user="portdocs@example.com", api_token="emulator-token")
    )
    shared = draft_api(emulator.api_url, credentials, (emulator.files_host,), gate=RateLimitGate())
    emulator.inject(Fault(endpoint="upload_requests", status=429, retry_after="1"))
    with pytest.raises(TransientError):
        shared.request_upload_form("application/pdf", ample())  # one record sees the 429

    shared.request_upload_form("image/png", ample())  # another record's first call

    first, second = emulator.calls("upload_requests")
    assert second["at"] - first["at"] >= 1.0


def test_a_location_on_a_host_outside_the_allow_list_is_a_configuration_fault(
    files_service: ScriptedFilesService,
):
    files_service.answers.append((204, "https://elsewhere.example.com/direct-uploads%2Fx%2Fa.pdf"))
    client = draft_api(
        "https://api.invalid", StaticCredentials(TelnyxCredentials(api_key="k")), ("127.0.0.1",)
    )
    form = UploadForm(files_service.url, {"key": "k/${filename}"})
    with pytest.raises(ConfigurationError, match="refused Location") as raised:
        client.upload(form, "a.pdf", io.BytesIO(b"%PDF"), 4, "application/pdf", ample())
    assert "direct-uploads" not in str(raised.value)  # the bearer path never reaches a reason


@pytest.mark.parametrize(
    "headers",
    [{"Retry-After": "99999999"}, {"x-ratelimit-reset": "4102444800"}],  # the second: 2100-01-01 as an epoch
)
def test_an_absurd_rate_limit_wait_is_capped(headers):
    assert retry_after_seconds(response(429, **headers)) == 900.0


def test_a_rate_limit_pause_longer_than_the_invocation_is_not_slept_through():
    slept: list[float] = []
    gate = RateLimitGate(sleep=slept.append)
    gate.close_for(120)
    with pytest.raises(TransientError) as raised:
        gate.wait(Deadline(at=time.monotonic() + 30))
    assert slept == [] and raised.value.retry_after is not None and raised.value.retry_after > 100


@dataclass
class ScriptedFilesService:
    """A files service that answers each form upload with the next (status, S3 error code), or
    (204, Location)."""

    url: str
    answers: list[tuple[int, str]]


@pytest.fixture
def files_service() -> Iterator[ScriptedFilesService]:
    answers: list[tuple[int, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            status, code = answers.pop(0)
            body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
            if status == 204:  # success: the second value is the Location
                body = b""
                self.send_response(status)
                self.send_header("Location", code)
            else:
                self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield ScriptedFilesService(f"http://127.0.0.1:{server.server_port}", answers)
    server.shutdown()


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, "RequestTimeout", TransientError),
        (400, "IncompleteBody", TransientError),
        (400, "ExpiredToken", TransientError),
        (503, "SlowDown", TransientError),
        (400, "EntityTooLarge", PermanentError),
        (400, "InvalidArgument", PermanentError),
    ],
)
def test_files_service_errors_are_classified_by_their_s3_code(
    files_service: ScriptedFilesService, status, code, kind
):
    files_service.answers.append((status, code))
    client = draft_api("https://api.invalid", StaticCredentials(TelnyxCredentials(api_key="k")), ())
    form = UploadForm(files_service.url, {"key": "k/${filename}"})
    with pytest.raises(kind, match=code) as raised:
        client.upload(form, "a.pdf", io.BytesIO(b"%PDF"), 4, "application/pdf", ample())
    assert type(raised.value) is kind


def test_an_intake_stream_that_breaks_mid_upload_is_transient(client: DraftPortRequestsApi):
    class Breaking(io.BytesIO):
        def read(self, amount: int | None = -1) -> bytes:
            raise IncompleteReadError(actual_bytes=10, expected_bytes=100)

    form = client.request_upload_form("application/pdf", ample())
    with pytest.raises(
        TransientError, match="reading the intake object failed mid-upload: IncompleteReadError"
    ):
        client.upload(form, "a.pdf", Breaking(), 100, "application/pdf", ample())


def test_an_error_quoting_what_was_sent_keeps_the_files_url_out_of_the_reason(
    client: DraftPortRequestsApi, emulator: TelnyxEmulator
):
    body = b"%PDF-1.4 x"
    form = client.request_upload_form("application/pdf", ample())
    location = client.upload(
        form, "Jane Doe LOA.pdf", io.BytesIO(body), len(body), "application/pdf", ample()
    )
    emulator.inject(Fault(endpoint="supporting_documents", status=422, echo=True))
    request = DraftAssociation(DraftTarget(PORT_REQUEST, SUB_REQUEST, DocumentType.LOA), "LOA", location)
    with pytest.raises(PermanentError) as refused:
        client.associate(request, ample())

    reason = str(refused.value)
    assert "injected fault; you sent" in reason  # the server's words are kept...
    prefix = form.fields["key"].split("/")[1]
    assert prefix not in reason and "Jane" not in reason  # ...but not the file's bearer link, in any form


def test_a_refused_form_quoting_its_key_condition_keeps_the_key_out_of_the_reason(
    client: DraftPortRequestsApi, emulator: TelnyxEmulator
):
    form = client.request_upload_form("application/pdf", ample())
    prefix = form.fields["key"].split("${filename}")[0]
    tampered = UploadForm(form.url, {**form.fields, "key": "elsewhere/${filename}"}, form.file_field)
    with pytest.raises(TransientError, match=r"Policy Condition failed") as refused:
        client.upload(tampered, "a.pdf", io.BytesIO(b"x"), 1, "application/pdf", ample())
    assert prefix not in str(refused.value) and prefix.split("/")[1] not in str(refused.value)


def test_an_echo_is_redacted_before_the_reason_is_cut_short():
    location = "https://files-service-prod.s3.amazonaws.com/direct-uploads/3f2a9c1e-7b4d-4e5f-9a6b/a.pdf"
    body = ("x" * 250 + " file " + location.split("/", 3)[3] + " not found").encode()
    error = classify_api_failure(response(422, body), ApiCall("POST", "/x", json={"url": location}))
    assert "3f2a9c1e" not in str(error) and "direct-uploads/3" not in str(error)


def test_the_records_a_429_held_back_do_not_all_start_again_at_the_same_instant():
    slept: list[float] = []
    gate = RateLimitGate(clock=lambda: 100.0, sleep=slept.append)
    gate.close_for(2.0)
    for _ in range(20):  # twenty records of one environment waiting for the gate
        gate.wait(Deadline(at=time.monotonic() + 60))
    assert all(2.0 <= wait <= 3.0 for wait in slept)  # never before the reset, at most 1 s after
    assert len(set(slept)) > 10  # spread, not one thundering instant


@dataclass
class DrippingServer:
    url: str
    body: bytes
    sent: list[int]


@pytest.fixture
def dripping() -> Iterator[DrippingServer]:
    """Answers every request 200 with a JSON body sent a byte every 0.1 s: each byte well within
    any read timeout, so only a deadline on the whole answer ends the wait."""
    body = json.dumps({"data": {"id": "x" * 60}}).encode()
    sent: list[int] = []

    class Dripping(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    sent.append(byte)
                    time.sleep(0.1)
            except OSError:  # the client hung up: what these tests want
                pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Dripping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield DrippingServer(f"http://127.0.0.1:{server.server_port}", body, sent)
    server.shutdown()
    server.server_close()


def test_an_api_answer_dripped_a_byte_at_a_time_is_cut_off_at_the_deadline(dripping: DrippingServer):
    http = TelnyxHttp(dripping.url, StaticCredentials(TelnyxCredentials(api_key="k")))
    with pytest.raises(TransientError, match="within this invocation's time"):
        http.send(ApiCall("GET", "/v2/porting_orders/x"), Deadline(at=time.monotonic() + 2.0))
    assert len(dripping.sent) < len(dripping.body)  # given up before the server was done


def test_a_files_service_answer_dripped_a_byte_at_a_time_is_cut_off_at_the_deadline(
    dripping: DrippingServer,
):
    client = draft_api(
        "https://api.invalid", StaticCredentials(TelnyxCredentials(api_key="k")), ("127.0.0.1",)
    )
    form = UploadForm(dripping.url, {"key": "k/${filename}"})
    with pytest.raises(TransientError, match="upload to the files service: the answer did not arrive"):
        client.upload(
            form, "a.pdf", io.BytesIO(b"%PDF"), 4, "application/pdf", Deadline(at=time.monotonic() + 2.0)
        )
    assert len(dripping.sent) < len(dripping.body)

"""The v2 half of the Telnyx adapter against a server that answers what a test scripts: the lying
and half-working answers the emulator, being correct, never gives."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from portdocs.documents import DocumentType, PortingOrderTarget
from portdocs.errors import ConfigurationError, PermanentError, TransientError, UploadGoneError
from portdocs.retrying import Deadline
from portdocs.telnyx_credentials import StaticCredentials, TelnyxCredentials
from portdocs.telnyx_http import ApiCall, TelnyxHttp, classify_api_failure
from portdocs.telnyx_v2 import PortingOrdersApi

BODY = b"%PDF-1.4 a letter of authorisation"
ORDER = "po-1"
DOCUMENT = "doc-1"


@dataclass
class ScriptedTelnyx:
    """Answers each call with the next (status, JSON body) and records (method, path)."""

    url: str
    answers: list[tuple[int, Any]] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def client(self, credentials: TelnyxCredentials | None = None) -> PortingOrdersApi:
        return PortingOrdersApi(
            TelnyxHttp(self.url, StaticCredentials(credentials or TelnyxCredentials(api_key="KEY")))
        )


@pytest.fixture
def telnyx() -> Iterator[ScriptedTelnyx]:
    scripted = ScriptedTelnyx("")

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            scripted.calls.append((self.command, self.path.split("?")[0]))
            status, body = scripted.answers.pop(0)
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PATCH = answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scripted.url = f"http://127.0.0.1:{server.server_port}"
    yield scripted
    server.shutdown()


def ample() -> Deadline:
    return Deadline(at=time.monotonic() + 60)


def document(**overrides: Any) -> dict[str, Any]:
    digest = hashlib.sha256(BODY).hexdigest()
    answer = {"id": DOCUMENT, "status": "verified", "av_scan_status": "scanned", "sha256": digest}
    return {"data": {**answer, **overrides}}


def upload(telnyx: ScriptedTelnyx) -> str:
    return telnyx.client().upload_document("loa.pdf", io.BytesIO(BODY), len(BODY), "application/pdf", ample())


def test_an_upload_answer_is_believed_only_when_it_names_a_document_of_these_bytes(telnyx: ScriptedTelnyx):
    telnyx.answers += [(200, document())]
    assert upload(telnyx) == DOCUMENT
    for lie in (document(id=None), document(id="../v2/x"), document(sha256="0" * 64), {"data": None}):
        telnyx.answers.append((200, lie))
        with pytest.raises(TransientError):
            upload(telnyx)


@pytest.mark.parametrize("answer", [document(status="denied"), document(av_scan_status="infected")])
def test_a_denied_or_infected_upload_is_rejected(telnyx: ScriptedTelnyx, answer):
    telnyx.answers.append((200, answer))
    with pytest.raises(PermanentError, match="refused the file"):
        upload(telnyx)


def test_a_secret_without_an_api_key_is_a_configuration_fault_naming_it(telnyx: ScriptedTelnyx):
    legacy = telnyx.client(TelnyxCredentials(api_user="u", api_token="t"))
    with pytest.raises(ConfigurationError, match="add api_key"):
        legacy.upload_document("loa.pdf", io.BytesIO(BODY), len(BODY), "application/pdf", ample())
    assert telnyx.calls == []


LOA = PortingOrderTarget(ORDER, DocumentType.LOA)
CSR = PortingOrderTarget(ORDER, DocumentType.CSR)


def test_a_patch_answer_naming_a_later_loa_is_not_undone(telnyx: ScriptedTelnyx):
    # A newer version's link (or a person's) landed right after this one: setting it again
    # would put the older document back over it.
    telnyx.answers.append((200, {"data": {"id": ORDER, "documents": {"loa": "doc-2", "invoice": None}}}))
    telnyx.client().set_order_document(LOA, DOCUMENT, ample())
    assert telnyx.calls == [("PATCH", f"/v2/porting_orders/{ORDER}")]


def test_a_document_scanned_and_awaiting_review_is_there(telnyx: ScriptedTelnyx):
    # Telnyx's own "Retrieve a document" example: review pending, antivirus scan done.
    telnyx.answers.append((200, document(status="pending", av_scan_status="scanned")))
    telnyx.client().check_document(DOCUMENT, ample())


def refused(status: int) -> tuple[int, Any]:
    return status, {
        "errors": [{"code": "10015", "title": "Invalid", "detail": "no", "meta": {"retryable": False}}]
    }


@pytest.mark.parametrize(
    ("link", "lookup", "raised"),
    [
        (refused(422), refused(404), UploadGoneError),  # deleted: a fresh upload cures it
        (refused(404), refused(404), UploadGoneError),  # some APIs say 404 for a document they lost
        (refused(422), (200, document(status="pending", av_scan_status="pending_scan")), TransientError),
        (refused(422), (200, document(status="pending", av_scan_status="scanned")), PermanentError),
        (refused(422), (200, document(status="denied", av_scan_status="infected")), PermanentError),
        (refused(422), (200, document()), PermanentError),  # the document is fine: the refusal stands
        (refused(404), (200, document()), PermanentError),  # an unknown order
        (refused(422), refused(400), PermanentError),  # a lookup refused is not proof of deletion
    ],
)
def test_a_refused_link_asks_the_documents_service_why(telnyx: ScriptedTelnyx, link, lookup, raised):
    telnyx.answers += [link, lookup]
    with pytest.raises(raised) as error:
        telnyx.client().link_additional_document(CSR, DOCUMENT, ample())
    assert type(error.value) is raised
    assert telnyx.calls == [
        ("POST", f"/v2/porting_orders/{ORDER}/additional_documents"),
        ("GET", f"/v2/documents/{DOCUMENT}"),
    ]


def test_the_additional_documents_list_is_read_page_by_page(telnyx: ScriptedTelnyx):
    first = {"data": [{"document_id": "other"}], "meta": {"total_pages": 2}}
    second = {"data": [{"document_id": DOCUMENT}], "meta": {"total_pages": 2}}
    telnyx.answers += [(200, first), (200, second)]
    assert telnyx.client().is_additional_document(CSR, DOCUMENT, ample())
    telnyx.answers += [(200, first), (200, {"data": [], "meta": {"total_pages": 2}})]
    assert not telnyx.client().is_additional_document(CSR, DOCUMENT, ample())


@pytest.mark.parametrize("status", [408, 409, 425])
def test_a_refusal_telnyx_marks_not_retryable_is_final_whatever_its_status(
    telnyx: ScriptedTelnyx, status: int
):
    # Telnyx documents meta.retryable as always present on porting errors and final when false:
    # a 409 it will never accept must not be sent again five times, then dead-lettered.
    telnyx.answers.append(refused(status))
    with pytest.raises(PermanentError):
        telnyx.client().set_order_document(LOA, DOCUMENT, ample())
    assert telnyx.calls == [("PATCH", f"/v2/porting_orders/{ORDER}")]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_the_rate_limit_and_server_errors_stay_transient_whatever_meta_retryable_says(status: int):
    answer = requests.Response()
    answer.status_code = status
    answer._content = json.dumps({"errors": [{"code": "10007", "meta": {"retryable": False}}]}).encode()
    failure = classify_api_failure(answer, ApiCall("GET", "/v2/porting_orders/x"))
    assert isinstance(failure, TransientError)

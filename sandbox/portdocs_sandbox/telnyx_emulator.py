"""A strict Telnyx test double: the legacy porting document API and its S3 files service.

Two HTTP servers on loopback:
- the API (`/files/upload_requests`, `/origination/porting/draft_port_requests/{id}/supporting_documents`)
  checks credentials (401), bodies and document types (422) and draft port requests (404);
- the files service is where presigned forms point; it verifies them as S3 does (signature,
  expiry, every policy condition, file part last), stores the object and answers 204 with
  `Location`.
The API also serves Telnyx's current (v2) porting documents flow, with the same strictness:
- `POST /v2/documents` (multipart, the `file` part with its name) answers 200 with a document id,
  refuses what the documents service refuses (over 20 MB, types it does not take, TIFF among
  them), removes spaces from the name, and denies a file its scan finds infected (the EICAR test
  string);
- a document not linked within 30 minutes of its upload is gone, on the emulator's own clock
  (`/_emulator/clock` moves it on);
- `PATCH /v2/porting_orders/{id}` links an order's LOA and invoice (`documents.loa`,
  `documents.invoice`); `POST`/`GET /v2/porting_orders/{id}/additional_documents` link and list the
  rest; unknown orders are 404, unknown or expired documents 422;
- v2 takes `Authorization: Bearer <API key>` only.
After the documents, the emulator follows an order as Telnyx's porting team would (SDK types and
porting guides of team-telnyx, read in 2026):
- `GET /v2/porting_orders/{id}` (and `PATCH`) answers the order's whole documented shape; it starts
  `draft`, without `support_key`/`parent_support_key` (Telnyx gives none to drafts); the first
  status past draft reveals them (`sr_...` for the order, `pr_...` for its group);
- every order requires an LOA and an invoice: `GET /v2/porting_orders/{id}/requirements` lists
  them, `requirement-info-pending` until a document is set, `requirement-info-under-review` while
  it awaits review, then `approved` or `requirement-info-exception`; `requirements_met` only when
  all are approved;
- `GET /v2/porting/events` lists every event it made (`filter[type]`, `filter[porting_order_id]`,
  `filter[created_at][gte|lte]`, `page[number]`, `page[size]`): `porting_order.status_changed`,
  `.new_comment`, `.split` (one per number moved, as Telnyx sends them) and `.loa_updated` (a
  PATCH that changes the LOA; no payload and never a webhook, as in Telnyx's types);
- admin calls play Telnyx's side: set an order's status, comment on it, split it, verify or deny
  a document (`/_emulator/porting_orders/{id}/status|comments|split`,
  `/_emulator/documents/{id}/review`);
- webhooks: `PUT /_emulator/webhooks {"url", "hold"}` POSTs each event to `url` as Telnyx does,
  signed with the emulator's Ed25519 key (`telnyx-signature-ed25519` over `"{telnyx-timestamp}|"`
  + body; the public key is `webhook_public_key`), once, no retry, each delivery recorded. With
  `hold`, events wait for `POST /_emulator/webhooks/release`, which can send each twice and in a
  seeded random order: Telnyx warns its webhooks can be duplicated and out of order.
Admin endpoints under `/_emulator/` (API server) seed draft port requests and porting orders,
inject faults, move the clock and report what the emulator received. It is a test double: it has
no persistence and no auth on the admin endpoints, and it listens on loopback only.

An "ambiguous" fault performs the call for real (stores the file, records the association) and
then answers 504 or drops the connection: the client cannot tell that it succeeded, as happens
when a response is lost on the way back.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import random
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote_plus, unquote_plus, urlsplit
from xml.sax.saxutils import escape

import botocore.session
import filetype
import requests
from botocore.config import Config
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from PIL import Image
from pypdf import PdfReader
from werkzeug.exceptions import ClientDisconnected
from werkzeug.http import parse_options_header
from werkzeug.routing import Map, Rule
from werkzeug.sansio.multipart import Data, Epilogue, Event, Field, File, MultipartDecoder, NeedData
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from portdocs_sandbox.post_policy import PolicyViolation, verify_post

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from mypy_boto3_s3 import S3Client

DOCUMENT_TYPES = ("loa", "csr", "invoice", "other")
FILES_BUCKET = "files-service-local"
FORM_LIFETIME_SECONDS = 3600
SIGNING_ACCESS_KEY = "AKIAEMULATORFILES000"
CHUNK = 64 * 1024
ENDPOINTS = (
    "upload_requests",
    "supporting_documents",
    "files",
    "documents",
    "porting_orders",  # PATCH of an order
    "additional_documents",
    "porting_order",  # GET of an order
    "requirements",
    "porting_events",
)
V2_ENDPOINTS = (
    "documents",
    "porting_orders",
    "additional_documents",
    "porting_order",
    "requirements",
    "porting_events",
)
# Telnyx's documents service (developers.telnyx.com, "Documents": constraints and accepted types).
# Written out here, not imported from portdocs.documents: a test double that shared the code's
# rules could never catch the code getting them wrong.
DOCUMENTS_MAX_BYTES = 20 * 1024 * 1024
DOCUMENTS_NAME_MAX = 512
DOCUMENTS_ACCEPTED_TYPES = (
    "application/pdf",
    "image/png",
    "image/jpeg",
    "text/csv",
    "text/plain",
    "application/json",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
)
DOCUMENTS_EXTENSIONS = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}
UNLINKED_DOCUMENT_LIFETIME_SECONDS = 30 * 60
ADDITIONAL_DOCUMENTS_PER_CALL = 100
# The antivirus test file every scanner flags (eicar.org): the emulator's infected document.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
DEFAULT_API_KEY = "KEY0123EMULATOR_v2_key"
AMBIGUOUS_STATUS = 504  # a gateway timeout: the usual way a lost response shows itself

# Porting orders after their documents (team-telnyx SDK types: porting_order.py, porting/*, the
# OpenAPI's examples). Written out, for the same reason as the documents service's rules above.
PORTING_ORDER_STATUSES = (
    "draft",
    "in-process",
    "submitted",
    "exception",
    "foc-date-confirmed",
    "ported",
    "cancel-pending",
    "cancelled",
)
PORTING_EVENT_TYPES = (
    "porting_order.deleted",
    "porting_order.loa_updated",
    "porting_order.messaging_changed",
    "porting_order.status_changed",
    "porting_order.sharing_token_expired",
    "porting_order.new_comment",
    "porting_order.split",
)
# Telnyx types loa_updated as an event "without webhook": listed by the events API, never POSTed.
EVENTS_WITHOUT_WEBHOOK = ("porting_order.loa_updated", "porting_order.sharing_token_expired")
COMMENT_USER_TYPES = ("user", "admin", "system")
REVIEW_OUTCOMES = ("verified", "denied")
# Telnyx's port-in requirements guide: a requirement's status, from "nothing given" to "approved".
REQUIREMENT_PENDING = "requirement-info-pending"
REQUIREMENT_UNDER_REVIEW = "requirement-info-under-review"
REQUIREMENT_EXCEPTION = "requirement-info-exception"
REQUIREMENT_APPROVED = "approved"
REQUIREMENT_BY_REVIEW = {
    "pending": REQUIREMENT_UNDER_REVIEW,
    "verified": REQUIREMENT_APPROVED,
    "denied": REQUIREMENT_EXCEPTION,
}
# The invoice's type is the one Telnyx's reference shows; the LOA's id is the other one in its
# requirements sample, its texts the emulator's own.
REQUIREMENT_TYPES: dict[str, dict[str, Any]] = {
    "loa": {
        "id": "a428786a-5dc2-41c0-b0fe-c32df4c1b5e2",
        "name": "Letter of Authorization",
        "description": "A letter of authorization signed by the authorized person on the current account",
        "example": "Signed LOA listing every number",
        "acceptance_criteria": {"acceptable_values": []},
        "type": "document",
    },
    "invoice": {
        "id": "53970723-fbff-4f46-a975-f62be6c1a585",
        "name": "Latest Invoice",
        "description": "A copy of the latest phone bill from the current provider",
        "example": "Most recent phone bill",
        "acceptance_criteria": {"acceptable_values": []},
        "type": "document",
    },
}
PAGE_SIZE_DEFAULT = 20  # the OpenAPI's default for porting lists
PAGE_SIZE_MAX = 250
ORDER_PHONE_NUMBERS_SHOWN = 50  # include_phone_numbers: "the first 50 phone number objects"
EMULATOR_USER_ID = "0b7f5c9e-3d2a-4e61-9a8b-5c4d3e2f1a0b"
WEBHOOK_TIMEOUT_SECONDS = 10


@dataclass
class Fault:
    """Applies to the next `times` calls of `endpoint` (or to a `rate` of them, forever).

    `ambiguous`: the call takes effect first, then fails with `status` (504 by default) or,
    with `drop`, a dropped connection; `latency` is then spent after the effect. `path_contains`
    narrows the fault to calls whose path contains it (one draft port request, say). `echo`: the
    error's detail quotes the request's body, as some servers' validation errors do."""

    endpoint: str  # one of ENDPOINTS, or any
    status: int | None = None
    retry_after: str | None = None
    ratelimit_reset: str | None = None
    latency: float = 0.0
    drop: bool = False
    expire_forms: bool = False
    ambiguous: bool = False
    times: int | None = 1
    rate: float | None = None
    path_contains: str | None = None
    echo: bool = False
    # v2's errors say whether a retry may succeed (errors[].meta.retryable); None: not said.
    retryable: bool | None = None
    # Only calls of this HTTP method (one endpoint may be both listed and posted to).
    method: str | None = None

    def matches(self, endpoint: str, path: str, method: str, chance: random.Random | None = None) -> bool:
        if self.endpoint not in (endpoint, "any") or (self.path_contains or "") not in path:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.rate is not None:
            return (chance or random).random() < self.rate
        return self.times is None or self.times > 0


@dataclass
class StoredObject:
    key: str
    path: Path
    size: int
    content_type: str
    etag: str


@dataclass
class Emulated:
    """Everything the emulator holds; guarded by one lock."""

    draft_port_requests: dict[str, set[str]] = field(default_factory=dict)
    documents: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    objects: dict[str, StoredObject] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    forms: list[dict[str, str]] = field(default_factory=list)
    v2_documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    porting_orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Every link of a document to an order that changed the order, in order: a repeat of the same
    # PATCH is not one, each additional document is.
    links: list[dict[str, Any]] = field(default_factory=list)
    porting_events: list[dict[str, Any]] = field(default_factory=list)


class TelnyxEmulator:
    def __init__(
        self,
        api_user: str | None = "portdocs@example.com",
        api_token: str | None = "emulator-token",  # noqa: S107 - a test double's well-known credential
        api_key: str | None = DEFAULT_API_KEY,  # v2 (porting orders) takes this one only
        host: str = "127.0.0.1",
        api_port: int = 0,
        files_port: int = 0,
        max_upload_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.credentials = {"api_user": api_user, "api_token": api_token, "api_key": api_key}
        self.max_upload_bytes = max_upload_bytes
        self._signing_secret = uuid.uuid4().hex
        self._storage = Path(tempfile.mkdtemp(prefix="portdocs-files-"))
        self._lock = threading.Lock()
        self.state = Emulated()
        self._running: Counter[str] = Counter()
        # Seconds added to the wall clock: moves the 30-minute window of unlinked documents on.
        self.clock_offset = 0.0
        self._peak: Counter[str] = Counter()
        # Draws for rate-based faults; seed it to replay a soak's fault pattern (as far as thread
        # timing allows).
        self.random = random.Random()
        self._api_server = make_server(host, api_port, self._api_app, threaded=True)
        self._files_server = make_server(host, files_port, self._files_app, threaded=True)
        self._threads: list[threading.Thread] = []
        self._api_routes = _api_routes()
        self._webhooks = _Webhooks()
        self._last_stamp = 0  # milliseconds of the latest order update or event

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://{self._api_server.host}:{self._api_server.port}"

    @property
    def files_url(self) -> str:
        return f"http://{self._files_server.host}:{self._files_server.port}"

    @property
    def files_host(self) -> str:
        return urlsplit(self.files_url).netloc

    def start(self) -> TelnyxEmulator:
        for server in (self._api_server, self._files_server):
            thread = threading.Thread(target=server.serve_forever, daemon=True, name="telnyx-emulator")
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in (self._api_server, self._files_server):
            server.shutdown()
            server.server_close()
        shutil.rmtree(self._storage, ignore_errors=True)

    def __enter__(self) -> TelnyxEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state, for tests and the sandbox ----------------------------------------------------

    def seed(self, draft_port_request_id: str, *sub_request_ids: str) -> None:
        with self._lock:
            self.state.draft_port_requests.setdefault(draft_port_request_id, set()).update(sub_request_ids)

    def seed_porting_order(
        self,
        porting_order_id: str,
        customer_reference: str | None = None,
        phone_numbers: Iterable[str] = ("+13125550100", "+13125550101"),
    ) -> None:
        """A new draft order of `phone_numbers` (seeding an order that exists changes nothing)."""
        with self._lock:
            if porting_order_id not in self.state.porting_orders:
                at = _iso(self._stamp() / 1000)
                order = _new_order(porting_order_id, customer_reference, list(phone_numbers), at)
                self.state.porting_orders[porting_order_id] = order

    def porting_order(self, porting_order_id: str) -> dict[str, Any]:
        """The order as GET answers it with its phone numbers, plus its `additional_documents`."""
        with self._lock:
            order = self.state.porting_orders[porting_order_id]
            return {
                **_order_view(order, phone_numbers=True),
                "additional_documents": copy.deepcopy(order["_emulator"]["additional_documents"]),
            }

    # -- Telnyx's side of a porting order: status, comments, splits, document reviews --------

    def set_order_status(
        self, order_id: str, value: str, details: Iterable[Mapping[str, Any]] = ()
    ) -> dict[str, Any]:
        """Moves an order to `value` with its `details` ({code, description} each); the event."""
        if value not in PORTING_ORDER_STATUSES:
            raise ValueError(f"status must be one of {', '.join(PORTING_ORDER_STATUSES)}")
        checked = _status_details(details)
        with self._lock:
            order = self._order(order_id)
            order["status"] = {"value": value, "details": checked}
            _show_support_keys(order)
            at = self._touch(order)
            event = self._event("porting_order.status_changed", order_id, _status_payload(order), at)
        self._webhooks.publish([event])
        return copy.deepcopy(event)

    def add_comment(self, order_id: str, body: str, user_type: str = "admin") -> dict[str, Any]:
        """A comment on the order, by its user, Telnyx's porting team (admin) or the system; the event."""
        if user_type not in COMMENT_USER_TYPES:
            raise ValueError(f"user_type must be one of {', '.join(COMMENT_USER_TYPES)}")
        if not isinstance(body, str) or not body:
            raise ValueError("body must be a non-empty string")
        with self._lock:
            order = self._order(order_id)
            at = self._stamp()
            comment = {
                "id": str(uuid.uuid4()),
                "body": body,
                "inserted_at": _iso(at / 1000),
                # Telnyx's example shows no user id on a porting team's comment.
                "user_id": order["user_id"] if user_type == "user" else None,
                "user_type": user_type,
            }
            payload = {"porting_order_id": order_id, "support_key": order["support_key"], "comment": comment}
            event = self._event("porting_order.new_comment", order_id, payload, at)
        self._webhooks.publish([event])
        return copy.deepcopy(event)

    def split_order(self, order_id: str, phone_numbers: Iterable[str]) -> str:
        """Moves `phone_numbers` to a new order, a copy of this one in the same group: its id.

        One `porting_order.split` event per number moved, as Telnyx sends them."""
        wanted = list(phone_numbers)
        with self._lock:
            parent = self._order(order_id)
            moving = _numbers_to_move(parent, wanted)
            child = _split_copy(parent, str(uuid.uuid4()), moving)
            self.state.porting_orders[child["id"]] = child
            at = self._touch(parent)
            child["created_at"] = child["updated_at"] = _iso(at / 1000)
            events = [
                self._event(
                    "porting_order.split", order_id, _split_payload(parent, child, number), self._stamp()
                )
                for number in moving
            ]
        self._webhooks.publish(events)
        return str(child["id"])

    def review_document(self, document_id: str, status: str, reason: str | None = None) -> dict[str, Any]:
        """Telnyx's review of a v2 document: `verified` or `denied` (for `reason`, which Telnyx's
        document has no field for: the answer keeps it as `review_reason`, GET does not show it).
        The requirements of every order linking it follow."""
        if status not in REVIEW_OUTCOMES:
            raise ValueError(f"status must be one of {', '.join(REVIEW_OUTCOMES)}")
        if self._live_document(document_id) is None:
            raise KeyError(f"no document {document_id}")
        with self._lock:
            document = self.state.v2_documents[document_id]
            document.update(status=status, review_reason=reason, updated_at=_iso(self._stamp() / 1000))
            for order in self.state.porting_orders.values():
                if document_id in order["documents"].values():
                    self._refresh_requirements(order)
                    self._touch(order)
            return _public(document) | {"review_reason": reason}

    def porting_events(self) -> list[dict[str, Any]]:
        """Every event the emulator made, oldest first, as the events API lists them."""
        with self._lock:
            return copy.deepcopy(self.state.porting_events)

    # -- webhooks ------------------------------------------------------------------------------

    @property
    def webhook_public_key(self) -> str:
        """The base64 of the raw 32-byte Ed25519 public key webhooks are signed with."""
        return self._webhooks.public_key

    def sign(self, timestamp: str, body: bytes) -> str:
        """The `telnyx-signature-ed25519` of `body` sent at `timestamp` (for tests)."""
        return self._webhooks.sign(timestamp, body)

    def send_webhooks_to(self, url: str | None, hold: bool = False) -> None:
        """POSTs every later event to `url` (None: no webhooks, and the held ones are dropped);
        with `hold`, keeps them until `release_webhooks`."""
        self._webhooks.configure(url, hold)

    def release_webhooks(
        self, shuffle: bool = False, duplicate: bool = False, seed: int | None = None
    ) -> list[int | None]:
        """POSTs every held event (each twice with `duplicate`, in a `seed`ed random order with
        `shuffle`): the statuses the receiver answered, None where it could not be reached."""
        return self._webhooks.release(shuffle, duplicate, seed)

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """Every POST of an event: {event_id, url, status, at (wall clock)}."""
        return self._webhooks.deliveries()

    def advance_clock(self, seconds: float) -> None:
        with self._lock:
            self.clock_offset += seconds

    def now(self) -> float:
        return time.time() + self.clock_offset

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self.state.faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self.state.faults.clear()

    def calls(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self.state.calls if endpoint in (None, c["endpoint"])]

    def peak_in_flight(self, endpoint: str) -> int:
        """The most calls of `endpoint` this emulator has served at the same time."""
        with self._lock:
            return self._peak[endpoint]

    def documents(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(d) for d in self.state.documents]

    def links(self) -> list[dict[str, Any]]:
        """Every time a document was linked to a porting order (its LOA or invoice set to it, or
        added as an additional document), with the document's sha256."""
        with self._lock:
            return [dict(link) for link in self.state.links]

    def v2_documents(self) -> list[dict[str, Any]]:
        """The documents service's documents that still exist (unlinked ones go after 30 minutes)."""
        with self._lock:
            ids = list(self.state.v2_documents)
        return [_public(document) for document_id in ids if (document := self._live_document(document_id))]

    def v2_document_bytes(self, document_id: str) -> bytes:
        """The bytes the documents service received as this document."""
        return (self._storage / f"document-{document_id}").read_bytes()

    def stored_bytes(self, location: str) -> bytes:
        stored = self._object_at(location)
        if stored is None:
            raise KeyError(location)
        return stored.path.read_bytes()

    # -- API server ----------------------------------------------------------------------------

    def _api_app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._api(Request(environ))(environ, start_response)

    def _files_app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._files(Request(environ))(environ, start_response)

    def _api(self, request: Request) -> Response:
        adapter = self._api_routes.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except Exception:
            return _errors(404, "10005", "Resource not found", "no such endpoint")
        if endpoint.startswith("admin_"):
            return getattr(self, f"_{endpoint}")(request, **args)
        return self._call(
            endpoint, request, lambda call, fault: self._perform(endpoint, request, args, fault)
        )

    def _call(
        self,
        endpoint: str,
        request: Request,
        perform: Callable[[dict[str, Any], Fault | None], Response],
        body: bool = True,
    ) -> Response:
        """One call of a Telnyx endpoint: recorded, counted while in flight, its fault applied."""
        call = self._record(endpoint, request, body)
        with self._in_flight(endpoint):
            fault = self._take_fault(endpoint, request.path, request.method)
            if fault and not fault.ambiguous and (response := self._apply_fault(fault, request)) is not None:
                call["status"] = response.status_code
                return response
            response = perform(call, fault)
            if fault and fault.ambiguous:
                return self._fail_after_effect(fault, request, call, response)
            call["status"] = response.status_code
            return response

    @contextmanager
    def _in_flight(self, endpoint: str) -> Iterator[None]:
        with self._lock:
            self._running[endpoint] += 1
            self._peak[endpoint] = max(self._peak[endpoint], self._running[endpoint])
        try:
            yield
        finally:
            with self._lock:
                self._running[endpoint] -= 1

    def _perform(
        self, endpoint: str, request: Request, args: Mapping[str, Any], fault: Fault | None
    ) -> Response:
        if endpoint in V2_ENDPOINTS:
            return self._v2(endpoint, request, args)
        if not self._authorised(request):
            response = _errors(
                401,
                "10009",
                "Authentication failed",
                "The required authentication headers were missing or incorrect.",
            )
        elif endpoint == "upload_requests":
            response = self._upload_request(request, expired=bool(fault and fault.expire_forms))
        else:
            response = self._supporting_document(request, args["draft_port_request_id"])
        return response

    def _authorised(self, request: Request) -> bool:
        """The legacy API takes the user/token pair or an API key."""
        user, token = self.credentials["api_user"], self.credentials["api_token"]
        if (
            user
            and token
            and request.headers.get("x-api-user") == user
            and request.headers.get("x-api-token") == token
        ):
            return True
        return self._bearer_authorised(request)

    def _bearer_authorised(self, request: Request) -> bool:
        key = self.credentials["api_key"]
        return bool(key) and request.headers.get("Authorization") == f"Bearer {key}"

    def _upload_request(self, request: Request, expired: bool) -> Response:
        body = _json_body(request)
        content_type = body.get("content_type") if isinstance(body, dict) else None
        if not isinstance(content_type, str) or not re.fullmatch(r"[\w.+-]+/[\w.+-]+", content_type):
            return _errors(
                422, "10015", "Invalid content_type", "content_type must be a MIME type", "/content_type"
            )
        prefix = f"direct-uploads/{uuid.uuid4()}/"
        form = self._form_signer().generate_presigned_post(
            Bucket=FILES_BUCKET,
            Key=prefix + "${filename}",
            Fields={"acl": "public-read", "content-type": content_type},
            Conditions=[
                {"acl": "public-read"},
                {"content-type": content_type},
                ["content-length-range", 1, self.max_upload_bytes],
            ],
            ExpiresIn=-60 if expired else FORM_LIFETIME_SECONDS,
        )
        with self._lock:
            self.state.forms.append(form["fields"])
        return _json(
            201,
            {
                "url": form["url"],
                "http_method": "POST",
                "form_fields": form["fields"],
                "file_form_field": "file",
            },
        )

    def _form_signer(self) -> S3Client:
        """An S3 client with the files service's own key: what signs the forms upload requests answer."""
        client = botocore.session.get_session().create_client(
            "s3",
            region_name="us-east-1",
            endpoint_url=self.files_url,
            aws_access_key_id=SIGNING_ACCESS_KEY,
            aws_secret_access_key=self._signing_secret,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        return cast("S3Client", client)  # botocore's session types every client as BaseClient

    def _supporting_document(self, request: Request, draft_port_request_id: str) -> Response:
        with self._lock:
            sub_requests = self.state.draft_port_requests.get(draft_port_request_id)
        if sub_requests is None:
            return _errors(
                404, "10005", "Resource not found", f"draft port request {draft_port_request_id} not found"
            )
        body = _json_body(request)
        if not isinstance(body, dict):
            return _errors(422, "10015", "Invalid request body", "the body must be a JSON object")
        for name in ("document_type", "description", "url", "draft_sub_request_id"):
            if not isinstance(body.get(name), str):
                return _errors(422, "10002", "Missing required parameter", f"{name} is required", f"/{name}")
        if body["document_type"] not in DOCUMENT_TYPES:
            return _errors(
                422,
                "10015",
                "Invalid document_type",
                f"use one of {', '.join(DOCUMENT_TYPES)}",
                "/document_type",
            )
        if body["draft_sub_request_id"] not in sub_requests:
            return _errors(
                422,
                "10015",
                "Invalid draft_sub_request_id",
                "not a sub-request of this draft port request",
                "/draft_sub_request_id",
            )
        if self._object_at(body["url"]) is None:
            return _errors(422, "10015", "Invalid url", "url does not reference an uploaded file", "/url")
        document = {
            "id": str(uuid.uuid4()),
            "body": body["description"],
            "document_type": body["document_type"],
            "created_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        with self._lock:
            self.state.documents.append(
                {
                    **document,
                    "draft_port_request_id": draft_port_request_id,
                    "draft_sub_request_id": body["draft_sub_request_id"],
                    "url": body["url"],
                }
            )
        return _json(201, document)

    # -- v2: the documents service and porting orders -----------------------------------------

    def _v2(self, endpoint: str, request: Request, args: Mapping[str, Any]) -> Response:
        if not self._bearer_authorised(request):
            return _v2_refusal(
                401, "10009", "Authentication failed", "v2 takes Authorization: Bearer <API key> only"
            )
        if endpoint == "documents":
            return self._documents(request, args)
        if endpoint == "porting_events":
            return self._porting_events(request, args.get("event_id"))
        with self._lock:
            order = self.state.porting_orders.get(args["porting_order_id"])
        if order is None:
            missing = f"porting order {args['porting_order_id']} not found"
            return _v2_refusal(404, "10005", "Resource not found", missing)
        handler = {
            "porting_order": self._show_porting_order,
            "porting_orders": self._patch_porting_order,
            "requirements": self._list_requirements,
        }.get(endpoint, self._additional_documents)
        try:
            return handler(request, args["porting_order_id"], order)
        except _Invalid as invalid:
            return _v2_refusal(422, "10015", "Invalid parameter", str(invalid), invalid.pointer)

    def _documents(self, request: Request, args: Mapping[str, Any]) -> Response:
        if request.method != "GET":
            return self._upload_document(request)
        document = self._live_document(args["document_id"])
        if document is None:
            return _v2_refusal(404, "10005", "Resource not found", "no such document")
        return _json(200, {"data": _public(document)})

    def _show_porting_order(self, request: Request, porting_order_id: str, order: dict[str, Any]) -> Response:
        with self._lock:
            view = _order_view(order, phone_numbers=request.args.get("include_phone_numbers") == "true")
        return _json(200, {"data": view, "meta": _order_meta(porting_order_id)})

    def _list_requirements(self, request: Request, porting_order_id: str, order: dict[str, Any]) -> Response:
        with self._lock:
            listed = [_requirement_detail(requirement) for requirement in order["requirements"]]
        data, meta = _page(listed, request.args)
        return _json(200, {"data": data, "meta": meta})

    def _additional_documents(
        self, request: Request, porting_order_id: str, order: dict[str, Any]
    ) -> Response:
        if request.method != "GET":
            return self._add_additional_documents(request, porting_order_id, order)
        wanted = request.args.get("filter[document_type]")
        with self._lock:
            held = order["_emulator"]["additional_documents"]
            listed = [d for d in held if wanted in (None, d["document_type"])]
        return _json(200, {"data": listed, "meta": {"page_number": 1, "total_pages": 1}})

    def _porting_events(self, request: Request, event_id: str | None) -> Response:
        """Telnyx's events API: one event, or the events that pass the filters, oldest first."""
        if event_id is not None:
            with self._lock:
                found = [e for e in self.state.porting_events if e["id"] == event_id]
            if not found:
                return _v2_refusal(404, "10005", "Resource not found", f"no porting event {event_id}")
            return _json(200, {"data": copy.deepcopy(found[0])})
        try:
            wanted = _EventFilter.from_query(request.args)
            with self._lock:
                events = [copy.deepcopy(e) for e in self.state.porting_events if wanted.matches(e)]
            events.sort(key=lambda event: _instant(event["created_at"]))
            data, meta = _page(events, request.args)
        except _Invalid as invalid:
            return _v2_refusal(422, "10015", "Invalid parameter", str(invalid), invalid.pointer)
        return _json(200, {"data": data, "meta": meta})

    def _live_document(self, document_id: str) -> dict[str, Any] | None:
        """The document, unless the documents service has deleted it: not linked within 30 minutes."""
        with self._lock:
            document = self.state.v2_documents.get(document_id)
            if document is None:
                return None
            if (
                not document["linked"]
                and self.now() - document["uploaded_at"] > UNLINKED_DOCUMENT_LIFETIME_SECONDS
            ):
                del self.state.v2_documents[document_id]
                return None
            return document

    def _upload_document(self, request: Request) -> Response:
        if (request.content_length or 0) > DOCUMENTS_MAX_BYTES + 64 * 1024:
            return _v2_refusal(422, "10015", "Invalid file", "the file exceeds 20 MB", "/file")
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            return _v2_refusal(
                422, "10002", "Missing required parameter", "file (with its file name) is required", "/file"
            )
        content = upload.read()
        if len(content) > DOCUMENTS_MAX_BYTES:
            return _v2_refusal(422, "10015", "Invalid file", "the file exceeds 20 MB", "/file")
        name = upload.filename.replace(" ", "")
        if len(name) > DOCUMENTS_NAME_MAX or not name.isprintable():
            return _v2_refusal(
                422, "10015", "Invalid filename", "up to 512 printable characters", "/filename"
            )
        sniffed = filetype.guess(content[:8192])
        content_type = sniffed.mime if sniffed else (upload.mimetype or "application/octet-stream")
        refused = _refused_file(content, content_type)
        if refused:
            return _v2_refusal(422, "10015", "Invalid file", refused, "/file")
        extension = DOCUMENTS_EXTENSIONS.get(content_type, "")
        if extension and not name.lower().endswith(extension):
            name += extension
        infected = EICAR in content
        document_id = str(uuid.uuid4())
        document: dict[str, Any] = {
            "id": document_id,
            "record_type": "document",
            "content_type": content_type,
            "size": {"unit": "bytes", "amount": len(content)},
            "sha256": hashlib.sha256(content).hexdigest(),
            "filename": name,
            # As Telnyx's own example answers: scanned at once, its review still pending.
            "status": "denied" if infected else "pending",
            "av_scan_status": "infected" if infected else "scanned",
            "created_at": _iso(self.now()),
            "updated_at": _iso(self.now()),
            "uploaded_at": self.now(),
            "linked": False,
        }
        (self._storage / f"document-{document_id}").write_bytes(content)
        with self._lock:
            self.state.v2_documents[document_id] = document
        return _json(200, {"data": _public(document)})

    def _linkable(self, document_id: Any, pointer: str) -> Response | None:
        """Why `document_id` cannot be linked to an order, as Telnyx answers it; None if it can."""
        document = self._live_document(document_id) if isinstance(document_id, str) else None
        if document is None:
            return _v2_refusal(
                422,
                "10015",
                "Invalid document",
                "no such document (unlinked ones go after 30 minutes)",
                pointer,
            )
        if document["status"] == "denied":
            return _v2_refusal(422, "10015", "Invalid document", "the document was denied", pointer)
        return None

    def _link(self, document_id: str, porting_order_id: str, as_type: str) -> None:
        with self._lock:
            document = self.state.v2_documents[document_id]
            document["linked"] = True
            self.state.links.append(
                {
                    "document_id": document_id,
                    "porting_order_id": porting_order_id,
                    "document_type": as_type,
                    "sha256": document["sha256"],
                }
            )

    def _patch_porting_order(
        self, request: Request, porting_order_id: str, order: dict[str, Any]
    ) -> Response:
        body = _json_body(request)
        documents = body.get("documents") if isinstance(body, dict) else None
        if not isinstance(documents, dict) or not documents or set(documents) - {"loa", "invoice"}:
            return _v2_refusal(
                422, "10015", "Invalid documents", "documents takes loa and invoice only", "/documents"
            )
        for kind, document_id in documents.items():
            if (refused := self._linkable(document_id, f"/documents/{kind}")) is not None:
                return refused
        with self._lock:
            changed = [
                kind for kind, document_id in documents.items() if order["documents"][kind] != document_id
            ]
            order["documents"].update(documents)
            events = self._documents_changed(order, changed)
            view = _order_view(order)
        for kind in changed:
            self._link(documents[kind], porting_order_id, kind)
        self._webhooks.publish(events)
        return _json(200, {"data": view, "meta": _order_meta(porting_order_id)})

    def _documents_changed(self, order: dict[str, Any], changed: list[str]) -> list[dict[str, Any]]:
        """The order's requirements follow its new documents (the lock held); its events."""
        if not changed:
            return []  # a repeat of the same PATCH changes nothing
        self._refresh_requirements(order)
        at = self._touch(order)
        if "loa" not in changed:
            return []
        return [self._event("porting_order.loa_updated", order["id"], None, at)]

    def _add_additional_documents(
        self, request: Request, porting_order_id: str, order: dict[str, Any]
    ) -> Response:
        body = _json_body(request)
        wanted = body.get("additional_documents") if isinstance(body, dict) else None
        if not isinstance(wanted, list) or not 1 <= len(wanted) <= ADDITIONAL_DOCUMENTS_PER_CALL:
            return _v2_refusal(
                422,
                "10015",
                "Invalid additional_documents",
                "a list of 1 to 100 documents",
                "/additional_documents",
            )
        for index, item in enumerate(wanted):
            pointer = f"/additional_documents/{index}"
            if not isinstance(item, dict) or item.get("document_type") not in DOCUMENT_TYPES:
                return _v2_refusal(
                    422, "10015", "Invalid document_type", f"use one of {', '.join(DOCUMENT_TYPES)}", pointer
                )
            if (refused := self._linkable(item.get("document_id"), f"{pointer}/document_id")) is not None:
                return refused
        created = []
        for item in wanted:
            self._link(item["document_id"], porting_order_id, item["document_type"])
            now = _iso(self.now())
            created.append(
                {
                    "id": str(uuid.uuid4()),
                    "record_type": "porting_additional_document",
                    "document_id": item["document_id"],
                    "document_type": item["document_type"],
                    "porting_order_id": porting_order_id,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        with self._lock:
            order["_emulator"]["additional_documents"].extend(created)
        return _json(201, {"data": created})

    # -- the order's bookkeeping (each called with the lock held) ------------------------------

    def _order(self, order_id: str) -> dict[str, Any]:
        order = self.state.porting_orders.get(order_id)
        if order is None:
            raise KeyError(f"no porting order {order_id}")
        return order

    def _stamp(self) -> int:
        """Milliseconds on the emulator's clock, each later than the one before: events and an
        order's updated_at keep their order even when two changes fall within one millisecond."""
        self._last_stamp = max(int(self.now() * 1000), self._last_stamp + 1)
        return self._last_stamp

    def _touch(self, order: dict[str, Any]) -> int:
        at = self._stamp()
        order["updated_at"] = _iso(at / 1000)
        return at

    def _refresh_requirements(self, order: dict[str, Any]) -> None:
        for requirement in order["requirements"]:
            document_id = order["documents"][_REQUIREMENT_KINDS[requirement["requirement_type_id"]]]
            document = self.state.v2_documents.get(document_id) if document_id else None
            requirement["field_value"] = document_id
            requirement["requirement_status"] = (
                REQUIREMENT_BY_REVIEW[document["status"]] if document else REQUIREMENT_PENDING
            )
        # Telnyx's guide: met once every requirement is "fulfilled and approved", not merely given.
        order["requirements_met"] = all(
            r["requirement_status"] == REQUIREMENT_APPROVED for r in order["requirements"]
        )

    def _event(self, event_type: str, order_id: str, payload: Any, at: int) -> dict[str, Any]:
        created = _iso(at / 1000)
        webhook = [] if event_type in EVENTS_WITHOUT_WEBHOOK else ["webhook"]
        event = {
            "id": str(uuid.uuid4()),
            "record_type": "porting_event",
            "event_type": event_type,
            "porting_order_id": order_id,
            "payload_status": "created",
            "payload": payload,
            "available_notification_methods": ["email", *webhook],
            "created_at": created,
            "updated_at": created,
        }
        self.state.porting_events.append(event)
        return event

    # -- files service -----------------------------------------------------------------------------

    def _files(self, request: Request) -> Response:
        path = request.path.strip("/")
        if request.method == "GET":
            # The raw path: the server's decoded one has lost the difference between %2B and +.
            raw_path = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
            stored = self._object_at(f"{self.files_url}{raw_path}")
            if stored is None:
                return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
            return Response(
                stored.path.read_bytes(), content_type=stored.content_type, headers={"ETag": stored.etag}
            )
        if request.method != "POST" or path != FILES_BUCKET:
            return _s3_error(
                405, "MethodNotAllowed", "The specified method is not allowed against this resource."
            )
        return self._call(
            "files", request, lambda call, fault: self._store_form_upload(request, call), body=False
        )

    def _store_form_upload(self, request: Request, call: dict[str, Any]) -> Response:
        mimetype, options = parse_options_header(request.headers.get("Content-Type", ""))
        if mimetype != "multipart/form-data" or "boundary" not in options:
            return _s3_error(
                412, "PreconditionFailed", "Bucket POST must be of the enclosure-type multipart/form-data"
            )
        form = _FormReader(self._storage)
        refused = _read_form(request, options["boundary"], form)
        if refused is not None:
            return refused
        call["fields"] = list(form.fields)
        call["field_values"] = dict(form.fields)  # a test double: tests check these never reach a log
        call["file_name"], call["file_size"] = form.file_name, form.size
        if form.file_name is None:
            return _s3_error(400, "InvalidArgument", "POST requires exactly one file upload per request.")
        if form.after_file:
            # S3 ignores fields after the file; a client that sends them has a bug, so say so.
            return _s3_error(
                400,
                "InvalidArgument",
                f"fields after the file part are ignored by S3: {', '.join(form.after_file)}",
            )
        return self._keep_upload(form, form.file_name, call)

    def _keep_upload(self, form: _FormReader, file_name: str, call: dict[str, Any]) -> Response:
        """Verifies the form as S3 does, then keeps the file under the key the form names: 204 (or
        the success_action_status the form asks for) with its Location and ETag."""
        try:
            verified = verify_post(
                FILES_BUCKET, form.fields, file_name, form.size, {SIGNING_ACCESS_KEY: self._signing_secret}
            )
        except PolicyViolation as violation:
            Path(form.handle.name).unlink(missing_ok=True)
            return _s3_error(violation.status, violation.code, violation.message)
        etag = f'"{form.digest.hexdigest()}"'
        content_type = form.fields.get("content-type", "binary/octet-stream")
        stored = StoredObject(verified.key, Path(form.handle.name), form.size, content_type, etag)
        with self._lock:
            self.state.objects[verified.key] = stored
        location = f"{self.files_url}/{FILES_BUCKET}/{quote_plus(verified.key, safe='')}"
        call["key"] = verified.key
        status = (
            int(form.fields.get("success_action_status", "204"))
            if form.fields.get("success_action_status") in ("200", "201")
            else 204
        )
        return Response(status=status, headers={"Location": location, "ETag": etag})

    def _object_at(self, url: str) -> StoredObject | None:
        parts = urlsplit(url)
        prefix = f"/{FILES_BUCKET}/"
        if parts.netloc != self.files_host or not parts.path.startswith(prefix):
            return None
        with self._lock:
            return self.state.objects.get(unquote_plus(parts.path[len(prefix) :]))

    # -- faults and recording ------------------------------------------------------------------------

    def _record(self, endpoint: str, request: Request, body: bool = True) -> dict[str, Any]:
        call: dict[str, Any] = {
            "endpoint": endpoint,
            "method": request.method,
            "url": request.url,
            "path": request.path,
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "at": time.time(),
        }
        if body:
            call["json"] = _json_body(request)
        with self._lock:
            self.state.calls.append(call)
        return call

    def _take_fault(self, endpoint: str, path: str, method: str) -> Fault | None:
        with self._lock:
            for fault in self.state.faults:
                if fault.matches(endpoint, path, method, self.random):
                    if fault.rate is None and fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def _fail_after_effect(
        self, fault: Fault, request: Request, call: dict[str, Any], effect: Response
    ) -> Response:
        """The call has taken effect (or failed on its own merits); the client hears a failure."""
        call["ambiguous"], call["effect_status"] = True, effect.status_code
        response = self._apply_fault(fault, request)
        if response is None:
            response = _errors(
                AMBIGUOUS_STATUS, "10007", "Unexpected error", "injected fault after the effect"
            )
        call["status"] = response.status_code
        return response

    def _apply_fault(self, fault: Fault, request: Request) -> Response | None:
        if fault.latency:
            time.sleep(fault.latency)
        if fault.drop:
            connection = request.environ.get("werkzeug.socket")
            if connection is not None:
                connection.shutdown(socket.SHUT_RDWR)
            return Response(status=500)
        if fault.status is None:
            return None
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = fault.retry_after
        if fault.ratelimit_reset is not None:
            headers["x-ratelimit-reset"] = fault.ratelimit_reset
        if fault.status == 429:
            return _errors(
                429,
                "10011",
                "Too many requests",
                "Rate limit exceeded",
                headers=headers,
                retryable=fault.retryable,
            )
        detail = (
            f"injected fault; you sent {request.get_data(as_text=True)}" if fault.echo else "injected fault"
        )
        return _errors(
            fault.status, "10007", "Unexpected error", detail, headers=headers, retryable=fault.retryable
        )

    # -- admin endpoints ----------------------------------------------------------------------------

    def _admin_seed(self, request: Request) -> Response:
        body = _json_body(request) or {}
        self.seed(str(body["id"]), *map(str, body.get("sub_request_ids", [])))
        return _json(201, {"id": body["id"]})

    def _admin_seed_porting_order(self, request: Request) -> Response:
        """{"id", "customer_reference", "phone_numbers"}: a new draft order (only the id required)."""
        body = _json_body(request) or {}
        numbers = body.get("phone_numbers")
        given = {"phone_numbers": [str(n) for n in numbers]} if isinstance(numbers, list) else {}
        self.seed_porting_order(str(body["id"]), body.get("customer_reference"), **given)
        return _json(201, {"id": body["id"]})

    def _admin_order_status(self, request: Request, porting_order_id: str) -> Response:
        """Telnyx moves the order on: {"value", "details": [{"code", "description"}]}; the event."""
        body = _json_object(request)
        return _admin_answer(
            lambda: self.set_order_status(porting_order_id, body.get("value", ""), body.get("details") or ())
        )

    def _admin_comment(self, request: Request, porting_order_id: str) -> Response:
        body = _json_object(request)
        return _admin_answer(
            lambda: self.add_comment(porting_order_id, body.get("body", ""), body.get("user_type", "admin"))
        )

    def _admin_split(self, request: Request, porting_order_id: str) -> Response:
        numbers = _json_object(request).get("phone_numbers")
        if not isinstance(numbers, list):
            return _json(422, {"error": "phone_numbers must be a list"})
        return _admin_answer(lambda: {"id": self.split_order(porting_order_id, numbers)})

    def _admin_review(self, request: Request, document_id: str) -> Response:
        body = _json_object(request)
        return _admin_answer(
            lambda: self.review_document(document_id, body.get("status", ""), body.get("reason"))
        )

    def _admin_webhooks(self, request: Request) -> Response:
        """PUT: where webhooks go ({"url", "hold"}); GET: that, and every delivery so far."""
        if request.method == "PUT":
            body = _json_object(request)
            url = body.get("url")
            if url is not None and not isinstance(url, str):
                return _json(422, {"error": "url must be a string or null"})
            self.send_webhooks_to(url, bool(body.get("hold", False)))
        return _json(200, {**self._webhooks.state(), "deliveries": self.webhook_deliveries()})

    def _admin_release_webhooks(self, request: Request) -> Response:
        body = _json_object(request)
        seed = body.get("seed")
        statuses = self.release_webhooks(
            bool(body.get("shuffle", False)), bool(body.get("duplicate", False)), seed
        )
        return _json(200, {"statuses": statuses})

    def _admin_porting_order(self, request: Request, porting_order_id: str) -> Response:
        """An order's LOA, invoice and additional documents, as the emulator holds them."""
        try:
            return _json(200, self.porting_order(porting_order_id))
        except KeyError:
            return _json(404, {"error": f"no porting order {porting_order_id}"})

    def _admin_clock(self, request: Request) -> Response:
        """Moves the emulator's clock on by `advance_seconds` (the 30-minute window of documents)."""
        self.advance_clock(float((_json_body(request) or {}).get("advance_seconds", 0)))
        return _json(200, {"clock_offset": self.clock_offset})

    def _admin_faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.clear_faults()
            return _json(200, {"faults": []})
        fault = Fault(**(_json_body(request) or {}))
        if fault.endpoint not in (*ENDPOINTS, "any"):
            return _json(422, {"error": f"endpoint must be one of {ENDPOINTS} or any"})
        self.inject(fault)
        return _json(201, asdict(fault))

    def _admin_credentials(self, request: Request) -> Response:
        """Rotates the credentials the API accepts, as revoking a token on Telnyx's portal would."""
        body = _json_body(request) or {}
        with self._lock:
            self.credentials = {k: body.get(k) for k in ("api_user", "api_token", "api_key")}
        return _json(200, {"rotated": True})

    def _admin_calls(self, request: Request) -> Response:
        return _json(200, {"calls": self.calls(request.args.get("endpoint"))})

    def _admin_documents(self, request: Request) -> Response:
        return _json(200, {"documents": self.documents()})

    def _admin_forms(self, request: Request) -> Response:
        """Every form's fields issued so far, signatures and policies included: what must never be logged."""
        with self._lock:
            return _json(200, {"forms": list(self.state.forms)})


class _FormReader:
    """A files-service POST as S3 reads it, part by part: every field's value, and the one file
    part streamed to disk with its size and MD5 (its ETag); fields after the file are only named."""

    def __init__(self, storage: Path) -> None:
        self.handle = tempfile.NamedTemporaryFile(dir=storage, delete=False)  # noqa: SIM115 - _read_form closes it
        self.fields: dict[str, str] = {}
        self.file_name: str | None = None
        self.after_file: list[str] = []
        self.size = 0
        self.digest = hashlib.md5(usedforsecurity=False)
        self._current: str | None = None  # the field whose value is arriving; None in the file
        self._value = bytearray()

    def take(self, event: Event) -> bool:
        """Takes one event of the body; False if it starts a second file (S3 takes one a POST)."""
        if isinstance(event, File):
            if self.file_name is not None:
                return False
            self.file_name, self._current = event.filename, None
        elif isinstance(event, Field):
            if self.file_name is not None:
                self.after_file.append(event.name)
            self._current, self._value = event.name, bytearray()
        elif isinstance(event, Data):
            self._take_data(event)
        return True

    def _take_data(self, event: Data) -> None:
        if self._current is None and self.file_name is not None and not self.after_file:
            self.handle.write(event.data)
            self.digest.update(event.data)
            self.size += len(event.data)
            return
        self._value += event.data
        if not event.more_data and self._current is not None:
            self.fields[self._current] = self._value.decode("utf-8")


def _read_form(request: Request, boundary: str, form: _FormReader) -> Response | None:
    """Streams the request's body into `form`, closing its file; S3's error if the body is not
    well-formed multipart with at most one file, or ends early."""
    decoder = MultipartDecoder(boundary.encode(), max_form_memory_size=1024 * 1024)
    stream = request.stream
    try:
        while not isinstance(event := decoder.next_event(), Epilogue):
            if isinstance(event, NeedData):
                decoder.receive_data(stream.read(CHUNK) or None)
            elif not form.take(event):
                return _s3_error(400, "InvalidArgument", "POST requires exactly one file upload per request.")
    except ValueError as error:
        return _s3_error(
            400,
            "MalformedPOSTRequest",
            f"The body of your POST request is not well-formed multipart/form-data. ({error})",
        )
    except ClientDisconnected:
        # The uploader died or gave up mid-body (a killed Lambda): S3 keeps nothing of it.
        form.handle.close()
        Path(form.handle.name).unlink(missing_ok=True)
        return _s3_error(400, "IncompleteBody", "The request body ended before its Content-Length.")
    finally:
        form.handle.close()
    return None


def _api_routes() -> Map:
    """The API server's endpoints: Telnyx's legacy and v2 ones, then the emulator's own admin ones."""
    return Map(_telnyx_rules() + _admin_rules())


def _telnyx_rules() -> list[Rule]:
    order = "/v2/porting_orders/<porting_order_id>"
    return [
        Rule("/files/upload_requests", endpoint="upload_requests", methods=["POST"]),
        Rule(
            "/origination/porting/draft_port_requests/<draft_port_request_id>/supporting_documents",
            endpoint="supporting_documents",
            methods=["POST"],
        ),
        Rule("/v2/documents", endpoint="documents", methods=["POST"]),
        Rule("/v2/documents/<document_id>", endpoint="documents", methods=["GET"]),
        Rule(order, endpoint="porting_orders", methods=["PATCH"]),
        Rule(order, endpoint="porting_order", methods=["GET"]),
        Rule(f"{order}/requirements", endpoint="requirements", methods=["GET"]),
        Rule(f"{order}/additional_documents", endpoint="additional_documents", methods=["POST", "GET"]),
        Rule("/v2/porting/events", endpoint="porting_events", methods=["GET"]),
        Rule("/v2/porting/events/<event_id>", endpoint="porting_events", methods=["GET"]),
    ]


def _admin_rules() -> list[Rule]:
    order = "/_emulator/porting_orders/<porting_order_id>"
    return [
        Rule("/_emulator/draft_port_requests", endpoint="admin_seed", methods=["POST"]),
        Rule("/_emulator/porting_orders", endpoint="admin_seed_porting_order", methods=["POST"]),
        Rule(order, endpoint="admin_porting_order", methods=["GET"]),
        Rule(f"{order}/status", endpoint="admin_order_status", methods=["POST"]),
        Rule(f"{order}/comments", endpoint="admin_comment", methods=["POST"]),
        Rule(f"{order}/split", endpoint="admin_split", methods=["POST"]),
        Rule("/_emulator/documents/<document_id>/review", endpoint="admin_review", methods=["POST"]),
        Rule("/_emulator/webhooks", endpoint="admin_webhooks", methods=["PUT", "GET"]),
        Rule("/_emulator/webhooks/release", endpoint="admin_release_webhooks", methods=["POST"]),
        Rule("/_emulator/clock", endpoint="admin_clock", methods=["POST"]),
        Rule("/_emulator/faults", endpoint="admin_faults", methods=["POST", "DELETE"]),
        Rule("/_emulator/credentials", endpoint="admin_credentials", methods=["PUT"]),
        Rule("/_emulator/calls", endpoint="admin_calls", methods=["GET"]),
        Rule("/_emulator/documents", endpoint="admin_documents", methods=["GET"]),
        Rule("/_emulator/forms", endpoint="admin_forms", methods=["GET"]),
    ]


_REQUIREMENT_KINDS = {requirement["id"]: kind for kind, requirement in REQUIREMENT_TYPES.items()}


def _new_order(order_id: str, customer_reference: str | None, numbers: list[str], at: str) -> dict[str, Any]:
    """A draft order in the shape Telnyx's PortingOrder has, with plausible values; `_emulator`
    holds what the emulator keeps beside it (never shown)."""
    order: dict[str, Any] = {
        "id": order_id,
        "record_type": "porting_order",
        "customer_reference": customer_reference,
        "customer_group_reference": None,
        "description": f"FP {customer_reference or order_id[:8]}",
        "status": {"value": "draft", "details": []},
        "support_key": None,
        "parent_support_key": None,
        "requirements": [
            {
                "field_type": "document",
                "field_value": None,
                "requirement_type_id": requirement["id"],
                "requirement_status": REQUIREMENT_PENDING,
                "record_type": "porting_requirement",
            }
            for requirement in REQUIREMENT_TYPES.values()
        ],
        "requirements_met": False,
        "documents": {"loa": None, "invoice": None},
        "old_service_provider_ocn": "Unreal Communications",
        "porting_phone_numbers_count": len(numbers),
        "phone_number_type": "local",
        "webhook_url": None,
        "user_id": EMULATOR_USER_ID,
        "additional_steps": [],
        "created_at": at,
        "updated_at": at,
        **_order_settings(numbers),
    }
    order["_emulator"] = {
        "support_key": _support_key("sr_"),
        "group_key": _support_key("pr_"),
        "numbers": [{"id": str(uuid.uuid4()), "phone_number": number} for number in numbers],
        "additional_documents": [],
    }
    return order


def _order_settings(numbers: list[str]) -> dict[str, Any]:
    """The parts of a new order its user fills in: who, where, and what happens on activation."""
    return {
        "end_user": {
            "admin": {
                "entity_name": "Porter McPortersen",
                "auth_person_name": "Porter McPortersen II",
                "billing_phone_number": numbers[0].lstrip("+") if numbers else None,
                "account_number": "123abc",
                "pin_passcode": "1234",
                "tax_identifier": None,
                "business_identifier": None,
            },
            "location": {
                "street_address": "600 Congress Avenue",
                "extended_address": "14th Floor",
                "locality": "Austin",
                "administrative_area": "TX",
                "postal_code": "78701",
                "country_code": "US",
            },
        },
        "activation_settings": {
            "activation_status": None,
            "fast_port_eligible": False,
            "foc_datetime_requested": None,
            "foc_datetime_actual": None,
        },
        "phone_number_configuration": {
            "billing_group_id": None,
            "connection_id": None,
            "emergency_address_id": None,
            "messaging_profile_id": None,
            "tags": [],
        },
        "misc": {"type": "full", "remaining_numbers_action": None, "new_billing_phone_number": None},
        "messaging": {
            "enable_messaging": False,
            "messaging_capable": True,
            "messaging_port_completed": False,
            "messaging_port_status": "not_applicable",
        },
        "user_feedback": {"user_comment": None, "user_rating": None},
    }


def _support_key(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:6]


def _order_view(order: dict[str, Any], phone_numbers: bool = False) -> dict[str, Any]:
    """The order as Telnyx answers it; `phone_numbers` (include_phone_numbers) adds the first 50."""
    view = {k: copy.deepcopy(v) for k, v in order.items() if k != "_emulator"}
    if phone_numbers:
        numbers = order["_emulator"]["numbers"][:ORDER_PHONE_NUMBERS_SHOWN]
        view["phone_numbers"] = [_porting_phone_number(order, n["phone_number"]) for n in numbers]
    return view


def _porting_phone_number(order: dict[str, Any], phone_number: str) -> dict[str, Any]:
    return {
        "phone_number": phone_number,
        "phone_number_type": order["phone_number_type"],
        "porting_order_id": order["id"],
        "porting_order_status": order["status"]["value"],
        "support_key": order["support_key"],
        "activation_status": order["activation_settings"]["activation_status"],
        "portability_status": "confirmed",
        "requirements_status": _requirements_status(order),
        "record_type": "porting_phone_number",
    }


def _requirements_status(order: dict[str, Any]) -> str:
    """The least advanced of the order's requirement statuses (a number's requirements_status)."""
    statuses = {r["requirement_status"] for r in order["requirements"]}
    for status in (REQUIREMENT_EXCEPTION, REQUIREMENT_PENDING, REQUIREMENT_UNDER_REVIEW):
        if status in statuses:
            return status
    return REQUIREMENT_APPROVED


def _order_meta(order_id: str) -> dict[str, str]:
    return {"phone_numbers_url": f"/porting_phone_numbers?filter[porting_order_id]={order_id}"}


def _requirement_detail(requirement: dict[str, Any]) -> dict[str, Any]:
    """A requirement as GET .../requirements lists it: its type spelled out."""
    return {
        "field_type": requirement["field_type"],
        "field_value": requirement["field_value"],
        "requirement_status": requirement["requirement_status"],
        "requirement_type": copy.deepcopy(
            REQUIREMENT_TYPES[_REQUIREMENT_KINDS[requirement["requirement_type_id"]]]
        ),
        "record_type": "porting_requirement",
    }


def _status_details(details: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Each {code, description} as given: Telnyx's own examples use codes beyond its list."""
    checked = []
    for detail in details:
        if not isinstance(detail, Mapping) or not all(
            isinstance(detail.get(k), str) for k in ("code", "description")
        ):
            raise ValueError("each detail is {code, description}, both strings")
        checked.append({"code": detail["code"], "description": detail["description"]})
    return checked


def _show_support_keys(order: dict[str, Any]) -> None:
    """Telnyx shows no support keys on a draft order; past draft, its own and its group's."""
    shown = order["status"]["value"] != "draft"
    order["support_key"] = order["_emulator"]["support_key"] if shown else None
    order["parent_support_key"] = order["_emulator"]["group_key"] if shown else None


def _status_payload(order: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": order["id"],
        "customer_reference": order["customer_reference"],
        "status": copy.deepcopy(order["status"]),
        "support_key": order["support_key"],
        "updated_at": order["updated_at"],
        "webhook_url": order["webhook_url"],
    }


def _numbers_to_move(order: dict[str, Any], wanted: list[str]) -> list[dict[str, str]]:
    held = {n["phone_number"]: n for n in order["_emulator"]["numbers"]}
    if not wanted or not all(isinstance(number, str) for number in wanted):
        raise ValueError("phone_numbers must be a non-empty list of the order's numbers")
    if unknown := [number for number in wanted if number not in held]:
        raise ValueError(f"not on the order: {', '.join(unknown)}")
    if len(set(wanted)) == len(held):
        raise ValueError("a split leaves at least one number on the order")
    return [held[number] for number in dict.fromkeys(wanted)]


def _split_copy(parent: dict[str, Any], child_id: str, moving: list[dict[str, str]]) -> dict[str, Any]:
    """The new order of a split: the parent's fields, its own id and support key, the parent's
    group; the moved numbers leave the parent."""
    child = copy.deepcopy(parent)
    moved = {n["id"] for n in moving}
    parent["_emulator"]["numbers"] = [n for n in parent["_emulator"]["numbers"] if n["id"] not in moved]
    parent["porting_phone_numbers_count"] = len(parent["_emulator"]["numbers"])
    child.update(id=child_id, porting_phone_numbers_count=len(moving))
    child["_emulator"].update(support_key=_support_key("sr_"), numbers=copy.deepcopy(moving))
    for document in child["_emulator"]["additional_documents"]:
        document.update(id=str(uuid.uuid4()), porting_order_id=child_id)
    _show_support_keys(child)
    return child


def _split_payload(parent: dict[str, Any], child: dict[str, Any], number: dict[str, str]) -> dict[str, Any]:
    # Telnyx's payload names the moved number by id only; the number itself saves a lookup.
    return {
        "from": {"id": parent["id"]},
        "to": {"id": child["id"]},
        "porting_phone_numbers": [{"id": number["id"], "phone_number": number["phone_number"]}],
    }


class _Invalid(ValueError):
    """A query parameter Telnyx would refuse (422), with the parameter it names."""

    def __init__(self, message: str, parameter: str) -> None:
        super().__init__(message)
        self.pointer = parameter


def _page(
    items: list[dict[str, Any]], args: Mapping[str, str]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One page of `items` by `page[number]` and `page[size]`, and Telnyx's pagination meta."""
    number = _positive(args.get("page[number]", "1"), "page[number]")
    size = _positive(args.get("page[size]", str(PAGE_SIZE_DEFAULT)), "page[size]")
    if size > PAGE_SIZE_MAX:
        raise _Invalid(f"page[size] is at most {PAGE_SIZE_MAX}", "page[size]")
    meta = {
        "page_number": number,
        "page_size": size,
        "total_pages": -(-len(items) // size),
        "total_results": len(items),
    }
    return items[(number - 1) * size : number * size], meta


def _positive(value: str, name: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise _Invalid(f"{name} must be a positive integer", name)
    return int(value)


def _instant(value: str, name: str = "created_at") -> datetime:
    """An ISO 8601 time as an instant (a time without an offset is UTC)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(f"{name} must be an ISO 8601 date-time", name) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _EventFilter:
    """The events API's filters; None: not filtered on."""

    event_type: str | None = None
    porting_order_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def from_query(cls, args: Mapping[str, str]) -> _EventFilter:
        event_type = args.get("filter[type]")
        if event_type is not None and event_type not in PORTING_EVENT_TYPES:
            raise _Invalid(f"filter[type] must be one of {', '.join(PORTING_EVENT_TYPES)}", "filter[type]")
        bounds = [
            _instant(args[name], name) if name in args else None
            for name in ("filter[created_at][gte]", "filter[created_at][lte]")
        ]
        return cls(event_type, args.get("filter[porting_order_id]"), *bounds)

    def matches(self, event: dict[str, Any]) -> bool:
        created = _instant(event["created_at"])
        return (
            self.event_type in (None, event["event_type"])
            and self.porting_order_id in (None, event["porting_order_id"])
            and (self.since is None or created >= self.since)
            and (self.until is None or created <= self.until)
        )


class _Webhooks:
    """Telnyx's signed webhooks: each event POSTed once to one URL, signed with an Ed25519 key;
    or held back for a test to release, duplicated and out of order as Telnyx warns they may be."""

    def __init__(self) -> None:
        self._key = Ed25519PrivateKey.generate()
        raw = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_key = base64.b64encode(raw).decode()
        self._lock = threading.Lock()
        self._url: str | None = None
        self._hold = False
        self._held: list[dict[str, Any]] = []
        self._deliveries: list[dict[str, Any]] = []

    def sign(self, timestamp: str, body: bytes) -> str:
        return base64.b64encode(self._key.sign(f"{timestamp}|".encode() + body)).decode()

    def configure(self, url: str | None, hold: bool) -> None:
        with self._lock:
            self._url, self._hold = url, hold
            if url is None:
                self._held.clear()

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {"url": self._url, "hold": self._hold, "held": len(self._held)}

    def publish(self, events: list[dict[str, Any]]) -> None:
        """Sends the events that Telnyx sends as webhooks (or holds them); called without the
        emulator's lock, since a receiver may call the emulator back."""
        sent = [copy.deepcopy(e) for e in events if "webhook" in e["available_notification_methods"]]
        with self._lock:
            url = self._url
            if url is None or not sent:
                return
            if self._hold:
                self._held.extend(sent)
                return
        for event in sent:
            self._post(url, event)

    def release(self, shuffle: bool, duplicate: bool, seed: int | None) -> list[int | None]:
        with self._lock:
            url, held, self._held = self._url, self._held, []
        if url is None:
            return []
        batch = [event for event in held for _ in range(2 if duplicate else 1)]
        if shuffle:
            random.Random(seed).shuffle(batch)
        return [self._post(url, event) for event in batch]

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(delivery) for delivery in self._deliveries]

    def _post(self, url: str, event: dict[str, Any]) -> int | None:
        body = json.dumps(_webhook_body(event, url)).encode()
        # The real clock, not the emulator's: receivers check it against their own within 300 s.
        timestamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            "telnyx-timestamp": timestamp,
            "telnyx-signature-ed25519": self.sign(timestamp, body),
        }
        try:
            status: int | None = requests.post(
                url, data=body, headers=headers, timeout=WEBHOOK_TIMEOUT_SECONDS
            ).status_code
        except requests.RequestException:
            status = None
        with self._lock:
            self._deliveries.append(
                {"event_id": event["id"], "url": url, "status": status, "at": time.time()}
            )
        return status


def _webhook_body(event: dict[str, Any], url: str) -> dict[str, Any]:
    return {
        "data": {
            "event_type": event["event_type"],
            "id": event["id"],
            "occurred_at": event["created_at"],
            "payload": event["payload"],
            "record_type": "event",
            "porting_order_id": event["porting_order_id"],
        },
        "meta": {"attempt": 1, "delivered_to": url},
    }


def _public(document: dict[str, Any]) -> dict[str, Any]:
    """A document as the documents service answers it, without the emulator's own bookkeeping."""
    return {k: v for k, v in document.items() if k not in ("uploaded_at", "linked", "review_reason")}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_body(request: Request) -> Any:
    try:
        return json.loads(request.get_data(cache=True) or b"null")
    except (ValueError, ClientDisconnected):  # a client that hung up mid-body sent no body
        return None


def _json_object(request: Request) -> dict[str, Any]:
    body = _json_body(request)
    return body if isinstance(body, dict) else {}


def _admin_answer(act: Callable[[], Any]) -> Response:
    """An admin call's answer: 200 with what it returns, 404 for an unknown order or document,
    422 for a value Telnyx would not use."""
    try:
        return _json(200, act())
    except KeyError as missing:
        return _json(404, {"error": missing.args[0]})
    except ValueError as invalid:
        return _json(422, {"error": str(invalid)})


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json", headers=headers)


def _errors(
    status: int,
    code: str,
    title: str,
    detail: str,
    pointer: str | None = None,
    headers: dict[str, str] | None = None,
    retryable: bool | None = None,
) -> Response:
    error: dict[str, Any] = {"code": code, "title": title, "detail": detail}
    if pointer:
        error["source"] = {"pointer": pointer}
    if retryable is not None:
        error["meta"] = {"retryable": retryable}
    return _json(status, {"errors": [error]}, headers)


def _v2_refusal(
    status: int,
    code: str,
    title: str,
    detail: str,
    pointer: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A v2 refusal: Telnyx documents `meta.retryable` as always present on its porting errors."""
    return _errors(status, code, title, detail, pointer, headers, retryable=False)


def _s3_error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
    )
    return Response(body, status=status, content_type="application/xml")


def _refused_file(content: bytes, content_type: str) -> str | None:
    """Why the documents service refuses the file as its type: not a type it takes, or one that
    does not open as it; None when it takes it."""
    if content_type not in DOCUMENTS_ACCEPTED_TYPES:
        return f"{content_type} is not an accepted file type"
    unreadable = _unreadable(content, content_type)
    return f"not a readable {content_type}: {unreadable}" if unreadable else None


def _unreadable(content: bytes, content_type: str) -> str | None:
    """Why `content` does not open as the type it was detected as; None when it does. The documents
    service reads what it is sent (it names the file by the type it detects, and its reviewers open
    it): the emulator holds portdocs to sending files that open, whatever the name says."""
    try:
        if content_type == "application/pdf":
            reader = PdfReader(io.BytesIO(content))
            if reader.is_encrypted:
                return "encrypted"
            if not reader.pages:
                return "no pages"
        elif content_type.startswith("image/"):
            with Image.open(io.BytesIO(content)) as image:
                image.load()
    except Exception as error:  # whatever the parser says of it: the file does not open
        return f"{type(error).__name__}: {error}"
    return None


def main() -> None:
    """Runs the emulator on its own (for benchmarks): prints its URLs as one JSON line."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-upload-bytes", type=int, default=64 * 1024 * 1024)
    parser.add_argument(
        "--seed", nargs="+", metavar="ID", default=[], help="draft port request id, then sub-request ids"
    )
    args = parser.parse_args()
    emulator = TelnyxEmulator(max_upload_bytes=args.max_upload_bytes).start()
    if args.seed:
        emulator.seed(args.seed[0], *args.seed[1:])
    print(
        json.dumps(
            {"api_url": emulator.api_url, "files_url": emulator.files_url, "files_host": emulator.files_host}
        )
    )
    sys.stdout.flush()
    threading.Event().wait()


if __name__ == "__main__":
    main()

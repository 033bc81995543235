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
Admin endpoints under `/_emulator/` (API server) seed draft port requests and porting orders,
inject faults, move the clock and report what the emulator received. It is a test double: it has
no persistence and no auth on the admin endpoints, and it listens on loopback only.

An "ambiguous" fault performs the call for real (stores the file, records the association) and
then answers 504 or drops the connection: the client cannot tell that it succeeded, as happens
when a response is lost on the way back.
"""

from __future__ import annotations

import hashlib
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
from botocore.config import Config
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
    "porting_orders",
    "additional_documents",
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

    def seed_porting_order(self, porting_order_id: str) -> None:
        with self._lock:
            self.state.porting_orders.setdefault(
                porting_order_id, {"documents": {"loa": None, "invoice": None}, "additional_documents": []}
            )

    def porting_order(self, porting_order_id: str) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self.state.porting_orders[porting_order_id]))

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
        if endpoint in ("documents", "porting_orders", "additional_documents"):
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
            if request.method == "GET":
                document = self._live_document(args["document_id"])
                if document is None:
                    return _v2_refusal(404, "10005", "Resource not found", "no such document")
                return _json(200, {"data": _public(document)})
            return self._upload_document(request)
        with self._lock:
            order = self.state.porting_orders.get(args["porting_order_id"])
        if order is None:
            missing = f"porting order {args['porting_order_id']} not found"
            return _v2_refusal(404, "10005", "Resource not found", missing)
        if endpoint == "porting_orders":
            return self._patch_porting_order(request, args["porting_order_id"], order)
        if request.method == "GET":
            wanted = request.args.get("filter[document_type]")
            with self._lock:
                listed = [d for d in order["additional_documents"] if wanted in (None, d["document_type"])]
            return _json(200, {"data": listed, "meta": {"page_number": 1, "total_pages": 1}})
        return self._add_additional_documents(request, args["porting_order_id"], order)

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
        if content_type not in DOCUMENTS_ACCEPTED_TYPES:
            return _v2_refusal(
                422, "10015", "Invalid file", f"{content_type} is not an accepted file type", "/file"
            )
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
            "uploaded_at": self.now(),
            "linked": False,
        }
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
        for kind, document_id in documents.items():
            with self._lock:
                unchanged = order["documents"][kind] == document_id
                order["documents"][kind] = document_id
            if not unchanged:
                self._link(document_id, porting_order_id, kind)
        return _json(200, {"data": {"id": porting_order_id, "documents": dict(order["documents"])}})

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
            order["additional_documents"].extend(created)
        return _json(201, {"data": created})

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
        body = _json_body(request) or {}
        self.seed_porting_order(str(body["id"]))
        return _json(201, {"id": body["id"]})

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
    return Map(
        [
            Rule("/files/upload_requests", endpoint="upload_requests", methods=["POST"]),
            Rule(
                "/origination/porting/draft_port_requests/<draft_port_request_id>/supporting_documents",
                endpoint="supporting_documents",
                methods=["POST"],
            ),
            Rule("/v2/documents", endpoint="documents", methods=["POST"]),
            Rule("/v2/documents/<document_id>", endpoint="documents", methods=["GET"]),
            Rule("/v2/porting_orders/<porting_order_id>", endpoint="porting_orders", methods=["PATCH"]),
            Rule(
                "/v2/porting_orders/<porting_order_id>/additional_documents",
                endpoint="additional_documents",
                methods=["POST", "GET"],
            ),
            Rule("/_emulator/draft_port_requests", endpoint="admin_seed", methods=["POST"]),
            Rule("/_emulator/porting_orders", endpoint="admin_seed_porting_order", methods=["POST"]),
            Rule(
                "/_emulator/porting_orders/<porting_order_id>",
                endpoint="admin_porting_order",
                methods=["GET"],
            ),
            Rule("/_emulator/clock", endpoint="admin_clock", methods=["POST"]),
            Rule("/_emulator/faults", endpoint="admin_faults", methods=["POST", "DELETE"]),
            Rule("/_emulator/credentials", endpoint="admin_credentials", methods=["PUT"]),
            Rule("/_emulator/calls", endpoint="admin_calls", methods=["GET"]),
            Rule("/_emulator/documents", endpoint="admin_documents", methods=["GET"]),
            Rule("/_emulator/forms", endpoint="admin_forms", methods=["GET"]),
        ]
    )


def _public(document: dict[str, Any]) -> dict[str, Any]:
    """A document as the documents service answers it, without the emulator's own bookkeeping."""
    return {k: v for k, v in document.items() if k not in ("uploaded_at", "linked")}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_body(request: Request) -> Any:
    try:
        return json.loads(request.get_data(cache=True) or b"null")
    except (ValueError, ClientDisconnected):  # a client that hung up mid-body sent no body
        return None


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

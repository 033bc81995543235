"""Telnyx adapter: upload request, presigned form upload, association.

Every HTTP outcome is mapped here onto the project's error classes (`portdocs.errors`); callers
never see a requests exception or a status code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Protocol
from urllib.parse import quote_plus
from xml.etree import ElementTree

import requests
from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import BotoCoreError
from requests_toolbelt import MultipartEncoder
from urllib3.exceptions import ConnectTimeoutError, InvalidHeader, NewConnectionError
from urllib3.util.retry import Retry

from portdocs import shapes
from portdocs.documents import DraftTarget, PortingOrderTarget, check_url_allowed, redacted
from portdocs.errors import AmbiguousError, ConfigurationError, PermanentError, TransientError, UploadGoneError
from portdocs.messages import AssociationRequest
from portdocs.observability import logger
from portdocs.retrying import Deadline

API_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
UPLOAD_TIMEOUT = (5.0, 120.0)
REASON_TEXT_MAX = 300
# Telnyx's own SDK retries these; 425 (too early) is retried for the same reason as 429.
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})
PERMANENT_STATUSES = frozenset({400, 404, 405, 410, 413, 415, 422})
# Answers that say the request was not acted on: safe to repeat even a non-idempotent POST.
NOT_ACTED_ON_STATUSES = frozenset({408, 425, 429})
# A 429 that names no wait still closes the gate this long, so the other records back off too.
DEFAULT_RATE_LIMIT_PAUSE = 1.0
# A wait longer than this is not believed: one odd header must not lock an environment for days.
MAX_RATE_LIMIT_PAUSE = 900.0
# x-ratelimit-reset is documented in seconds; a value this large can only be an epoch moment.
_EPOCH_THRESHOLD = 1e9
# S3 error codes (of the files service) that a retry cures, whatever the status they came with.
S3_TRANSIENT_CODES = frozenset(
    {"RequestTimeout", "IncompleteBody", "SlowDown", "ExpiredToken", "InternalError", "ServiceUnavailable"}
)
_RETRY_AFTER_PARSER = Retry()
# Telnyx's error code for its rate limit, whatever status it comes with.
RATE_LIMIT_CODE = "10011"
# One page of an order's additional documents; Telnyx's lists are paginated.
ADDITIONAL_DOCUMENTS_PAGE_SIZE = 250


class RateLimitGate:
    """Telnyx's rate limit is per account, so one 429 concerns every record of this execution
    environment: all of them wait until the limit resets, not only the record that saw it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._opens_at = 0.0

    def close_for(self, seconds: float) -> None:
        with self._lock:
            self._opens_at = max(self._opens_at, self._clock() + min(seconds, MAX_RATE_LIMIT_PAUSE))

    def wait(self, deadline: Deadline) -> None:
        wait = self._opens_at - self._clock()
        if wait <= 0:
            return
        if wait >= deadline.remaining():
            raise TransientError(f"Telnyx asked for a {wait:.1f}s pause, more than this invocation has", wait)
        self._sleep(wait)


@dataclass(frozen=True)
class TelnyxCredentials:
    """Either the legacy pair (x-api-user/x-api-token) or a v2 API key (Bearer)."""

    api_user: str | None = field(default=None, repr=False)
    api_token: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_mapping(cls, values: dict[str, Any], origin: str) -> TelnyxCredentials:
        credentials = cls(
            api_user=values.get("api_user") or None,
            api_token=values.get("api_token") or None,
            api_key=values.get("api_key") or None,
        )
        if not (credentials.api_key or (credentials.api_user and credentials.api_token)):
            raise ConfigurationError(f"{origin} must hold either api_user and api_token, or api_key")
        return credentials

    def headers(self) -> dict[str, str]:
        if self.api_user and self.api_token:
            return {"x-api-user": self.api_user, "x-api-token": self.api_token}
        return {"Authorization": f"Bearer {self.api_key}"}

    def bearer_headers(self) -> dict[str, str]:
        """Telnyx's v2 API (porting orders, documents) takes an API key only."""
        if not self.api_key:
            raise ConfigurationError(
                "porting orders use Telnyx's v2 API, which takes an API key (Bearer): the Telnyx credentials "
                "hold only api_user and api_token; add api_key to them"
            )
        return {"Authorization": f"Bearer {self.api_key}"}


@dataclass(frozen=True)
class UploadForm:
    """A presigned S3 POST form; its fields (policy, signature) are secrets and never printed."""

    url: str
    fields: dict[str, str] = field(repr=False)
    file_field: str = "file"

    def location_for(self, file_name: str) -> str:
        """The URL S3 would return in Location, for servers that send none."""
        key = self.fields.get("key", "${filename}").replace("${filename}", file_name)
        return f"{self.url.rstrip('/')}/{quote_plus(key, safe='')}"


class _SizedReader:
    """Gives a boto3 streaming body the `len` (bytes still to read) that MultipartEncoder needs
    to compute Content-Length up front; reads stay chunked, so memory stays flat.

    A socket timeout bounds each read, not the whole upload: a files service (or intake stream)
    that takes a byte at a time would outlast the invocation, so every chunk checks the deadline."""

    def __init__(self, stream: IO[bytes], size: int, deadline: Deadline) -> None:
        self._stream = stream
        self._remaining = size
        self._deadline = deadline
        # What was sent, to hold against a server's account of what it received.
        self.sha256 = hashlib.sha256()

    @property
    def len(self) -> int:
        return self._remaining

    def read(self, amount: int = -1) -> bytes:
        if self._deadline.remaining() <= 0:
            raise TransientError("the upload did not finish within this invocation's time")
        chunk = self._stream.read(self._remaining if amount is None or amount < 0 else amount)
        self._remaining -= len(chunk)
        self.sha256.update(chunk)
        return chunk


class TelnyxClient:
    def __init__(
        self,
        base_url: str,
        credentials: CredentialsProvider,
        allowed_upload_hosts: tuple[str, ...],
        api_session: requests.Session | None = None,
        upload_session: requests.Session | None = None,
        gate: RateLimitGate | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._gate = gate or RateLimitGate()
        self._credentials = credentials
        self._allowed_upload_hosts = allowed_upload_hosts
        self._api = api_session or requests.Session()
        # A separate session for the presigned form: Telnyx credentials must never reach S3.
        self._uploads = upload_session or requests.Session()

    def request_upload_form(self, content_type: str, deadline: Deadline) -> UploadForm:
        # Asking for a form changes nothing on Telnyx's side; a 404/405 here means a wrong base URL
        # or a changed API, which no document can cure.
        response = self._call_api(
            "POST", "/files/upload_requests", {"content_type": content_type}, deadline, missing_is_configuration=True
        )
        try:
            body = response.json()
            form = UploadForm(
                url=str(body["url"]),
                fields={str(k): str(v) for k, v in dict(body["form_fields"]).items()},
                file_field=str(body.get("file_form_field") or "file"),
            )
            method = str(body.get("http_method", "POST")).upper()
        except (ValueError, KeyError, TypeError):
            raise TransientError("Telnyx returned an upload request without a usable form") from None
        if method != "POST":
            raise TransientError(f"Telnyx asked for an unsupported upload method {method[:16]!r}")
        try:
            check_url_allowed(form.url, self._allowed_upload_hosts)
        except PermanentError as error:
            # Not the document's fault: the allow-list or Telnyx changed. Keep it for redrive.
            raise ConfigurationError(f"refusing Telnyx's upload form: {error}") from None
        return form

    def upload(
        self, form: UploadForm, file_name: str, body: IO[bytes], size: int, content_type: str, deadline: Deadline
    ) -> str:
        """Streams the file into the form (file part last, as S3 requires); returns Location."""
        encoder = MultipartEncoder(
            fields=[
                *form.fields.items(),
                (form.file_field, (file_name, _SizedReader(body, size, deadline), content_type)),
            ]
        )
        try:
            response = self._uploads.post(
                form.url,
                data=encoder,
                headers={"Content-Type": encoder.content_type},
                timeout=deadline.cap(UPLOAD_TIMEOUT),
                allow_redirects=False,
            )
        except requests.RequestException as error:
            raise TransientError(f"upload to the files service failed: {type(error).__name__}") from None
        except BotoCoreError as error:
            # The intake object's stream broke mid-upload (IncompleteReadError, ResponseStreamingError).
            raise TransientError(f"reading the intake object failed mid-upload: {type(error).__name__}") from None
        if response.status_code in (200, 201, 204):
            location = response.headers.get("Location") or form.location_for(file_name)
            try:
                check_url_allowed(location, self._allowed_upload_hosts)
            except PermanentError as error:
                raise ConfigurationError(f"the files service answered with a refused Location: {error}") from None
            return location
        code, detail = _s3_error(response, (form.location_for(file_name), file_name, *form.fields.values()))
        if code in S3_TRANSIENT_CODES:
            raise TransientError(
                f"the files service answered {response.status_code} {detail}", retry_after=retry_after_seconds(response)
            )
        if response.status_code == 403:
            # Expired or refused form: a fresh upload request is the cure, so retry.
            raise TransientError(f"the files service refused the form (403 {detail})")
        if response.status_code in PERMANENT_STATUSES:
            raise PermanentError(f"the files service rejected the file ({response.status_code} {detail})")
        raise TransientError(
            f"the files service answered {response.status_code} {detail}",
            retry_after=retry_after_seconds(response),
        )

    def associate(self, request: AssociationRequest, deadline: Deadline) -> str:
        """Raises AmbiguousError when the POST may have been recorded although it failed."""
        target, url = request.target, request.upload.location_url
        assert isinstance(target, DraftTarget) and url is not None, "a draft's association names its Location"
        response = self._call_api(
            "POST",
            f"/origination/porting/draft_port_requests/{target.draft_port_request_id}/supporting_documents",
            {
                "document_type": str(target.document_type),
                "description": request.description,
                "url": url,
                "draft_sub_request_id": target.draft_sub_request_id,
            },
            deadline,
            idempotent=False,
        )
        try:
            return str(response.json()["id"])
        except (ValueError, KeyError, TypeError):
            # The association happened; only its id is missing. Retrying would double it.
            return "unknown"

    # -- v2: the documents service and porting orders ------------------------------------------

    def upload_document(self, file_name: str, body: IO[bytes], size: int, content_type: str, deadline: Deadline) -> str:
        """Streams the file to the documents service; returns its document id. Safe to repeat after
        an unknown outcome: a copy nothing links to is deleted by Telnyx within 30 minutes."""
        reader = _SizedReader(body, size, deadline)
        encoder = MultipartEncoder(fields=[("file", (file_name, reader, content_type))])
        response = self._call_api(
            "POST",
            "/v2/documents",
            None,
            deadline,
            data=encoder,
            content_type=encoder.content_type,
            bearer=True,
            missing_is_configuration=True,
            timeout=UPLOAD_TIMEOUT,
        )
        try:
            document = response.json()["data"]
            telnyx_document_id = document["id"]
            status, scan = str(document.get("status")), str(document.get("av_scan_status"))
            received = document.get("sha256")
        except (ValueError, KeyError, TypeError):
            raise TransientError("Telnyx's documents service answered without a document") from None
        _refuse_if_denied(status, scan)
        if not isinstance(telnyx_document_id, str) or not shapes.is_valid_id(telnyx_document_id):
            raise TransientError("Telnyx's documents service answered with an unusable document id")
        if received is not None and received != reader.sha256.hexdigest():
            # Not what was sent: a copy nothing links is deleted by Telnyx; send the file again.
            raise TransientError("Telnyx's documents service holds other bytes than were sent (sha256 differs)")
        return telnyx_document_id

    def attach(self, target: PortingOrderTarget, telnyx_document_id: str, deadline: Deadline) -> str:
        """Links an uploaded document to the order: its LOA or invoice (replacing the one it had:
        the newest version of the file is what a person means), or one of its additional
        documents. Raises UploadGoneError when Telnyx no longer has the document, AmbiguousError
        when an additional document may have been linked although the call failed."""
        order = f"/v2/porting_orders/{target.porting_order_id}"

        def when_refused(response: requests.Response) -> None:
            # A refused link may be about the document (gone, denied, still being scanned) rather
            # than the order: the documents service says which.
            if response.status_code in (404, 422):
                self.check_document(telnyx_document_id, deadline)

        if target.is_order_document:
            kind = str(target.document_type)
            response = self._call_api(
                "PATCH",
                order,
                {"documents": {kind: telnyx_document_id}},
                deadline,
                bearer=True,
                inspect_failure=when_refused,
            )
            with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                now_set = response.json()["data"]["documents"][kind]
                if now_set != telnyx_document_id:
                    # Linked, then replaced by a later write (a newer version, a person): setting
                    # it again would undo that write. The link happened; say what the order holds.
                    logger.warning(
                        f"the order's {kind} was replaced by another document right after this link",
                        extra={"porting_order_id": target.porting_order_id},
                    )
        else:
            link = {"document_id": telnyx_document_id, "document_type": str(target.document_type)}
            self._call_api(
                "POST",
                f"{order}/additional_documents",
                {"additional_documents": [link]},
                deadline,
                bearer=True,
                idempotent=False,
                inspect_failure=when_refused,
            )
        return telnyx_document_id

    def is_additional_document(self, target: PortingOrderTarget, telnyx_document_id: str, deadline: Deadline) -> bool:
        """Whether the order lists the document among its additional documents of that type: how an
        unknown outcome of the (non-idempotent) link is settled instead of guessed."""
        page = 1
        while True:
            response = self._call_api(
                "GET",
                f"/v2/porting_orders/{target.porting_order_id}/additional_documents",
                None,
                deadline,
                params={
                    "filter[document_type]": str(target.document_type),
                    "page[number]": str(page),
                    "page[size]": str(ADDITIONAL_DOCUMENTS_PAGE_SIZE),
                },
                bearer=True,
            )
            try:
                answer = response.json()
                listed = [str(record["document_id"]) for record in answer["data"]]
                pages = int((answer.get("meta") or {}).get("total_pages") or 1)
            except (ValueError, KeyError, TypeError):
                raise TransientError("Telnyx listed the order's additional documents in an unusable form") from None
            if telnyx_document_id in listed:
                return True
            if page >= pages:
                return False
            page += 1

    def check_document(self, telnyx_document_id: str, deadline: Deadline) -> None:
        """Whether the documents service still has the document, fit to be linked: raises
        UploadGoneError if it was deleted (404), PermanentError if it was denied or found infected,
        TransientError while its antivirus scan is still running; returns if it is there (linked
        or not). `status` is Telnyx's review of the document: `pending` there is a document
        waiting for a person's review, not one missing."""

        def when_refused(response: requests.Response) -> None:
            if response.status_code == 404:
                raise UploadGoneError(
                    "Telnyx no longer has the uploaded document (the documents service deletes what is not "
                    "linked within 30 minutes)"
                )

        response = self._call_api(
            "GET", f"/v2/documents/{telnyx_document_id}", None, deadline, bearer=True, inspect_failure=when_refused
        )
        try:
            document = response.json()["data"]
            status, scan = str(document.get("status")), str(document.get("av_scan_status"))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise TransientError("Telnyx described the document in an unusable form") from None
        _refuse_if_denied(status, scan)
        if scan == "pending_scan":
            raise TransientError("Telnyx's documents service is still scanning the document")

    def _call_api(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None,
        deadline: Deadline,
        idempotent: bool = True,
        missing_is_configuration: bool = False,
        bearer: bool = False,
        data: Any = None,
        content_type: str | None = None,
        params: dict[str, str] | None = None,
        timeout: tuple[float, float] = API_TIMEOUT,
        inspect_failure: Callable[[requests.Response], None] | None = None,
    ) -> requests.Response:
        """`inspect_failure` sees a refusal before it is classified, and may raise a more precise error."""
        step = f"{method} {path}"
        credentials = self._credentials()
        headers = {**(credentials.bearer_headers() if bearer else credentials.headers()), "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        self._gate.wait(deadline)
        try:
            response = self._api.request(
                method,
                f"{self._base_url}{path}",
                json=payload,
                data=data,
                params=params,
                headers=headers,
                timeout=deadline.cap(timeout),
                allow_redirects=False,
            )
        except requests.RequestException as error:
            fault = f"{step} failed: {type(error).__name__}"
            if not idempotent and _may_have_reached_telnyx(error):
                raise AmbiguousError(f"{fault}; Telnyx may have recorded it") from None
            raise TransientError(fault) from None
        except BotoCoreError as error:
            # The intake object's stream broke mid-upload (IncompleteReadError, ResponseStreamingError).
            raise TransientError(f"reading the intake object failed mid-upload: {type(error).__name__}") from None
        if 200 <= response.status_code < 300:
            return response
        if response.status_code in (401, 403):
            self._credentials.refresh()
        if inspect_failure is not None:
            inspect_failure(response)
        # The file's URL must not come back in an error's text: Telnyx may echo what it was sent.
        sent = (payload["url"],) if payload and isinstance(payload.get("url"), str) else ()
        failure = classify_api_failure(step, response, idempotent, missing_is_configuration, sent)
        if _is_rate_limit(response.status_code, _first_error(response)) and isinstance(failure, TransientError):
            self._gate.close_for(failure.retry_after or DEFAULT_RATE_LIMIT_PAUSE)
        raise failure


def _may_have_reached_telnyx(error: requests.RequestException) -> bool:
    """False only when the request provably never left: no connection was made."""
    if isinstance(error, requests.ConnectTimeout):
        return False
    if isinstance(error, requests.ConnectionError):
        reason = error.args[0] if error.args else None
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
        return not isinstance(reason, NewConnectionError | ConnectTimeoutError)
    return isinstance(error, requests.Timeout | requests.exceptions.ChunkedEncodingError)


def classify_api_failure(
    step: str,
    response: requests.Response,
    idempotent: bool = True,
    missing_is_configuration: bool = False,
    sent: tuple[str, ...] = (),
) -> Exception:
    """The one mapping from a failed Telnyx API response to the project's error classes; `sent`
    are what the request carried that must stay out of the error's text (redacted)."""
    status = response.status_code
    first = _first_error(response)
    rate_limited = _is_rate_limit(status, first)
    message = f"{step} answered {status}: {api_error_detail(response, sent, first)}"
    if status in (401, 403):
        return ConfigurationError(f"{message} (check the Telnyx credentials)")
    if status == 405 or (status == 404 and missing_is_configuration):
        return ConfigurationError(f"{message} (check TELNYX_API_BASE_URL: the endpoint is not there)")
    retry_after = retry_after_seconds(response)
    if status in TRANSIENT_STATUSES or status >= 500 or rate_limited:
        told_not_acted_on = (
            status in NOT_ACTED_ON_STATUSES or rate_limited or (status == 503 and retry_after is not None)
        )
        if not idempotent and not told_not_acted_on:
            return AmbiguousError(f"{message}; Telnyx may have recorded it", retry_after=retry_after)
        return TransientError(message, retry_after=retry_after)
    # A refusal (4xx) the v2 API marks retryable is retried; one it marks not retryable is final.
    retryable = first.get("meta", {}).get("retryable")
    if retryable is True:
        return TransientError(message, retry_after=retry_after)
    if status in PERMANENT_STATUSES or retryable is False:
        return PermanentError(message)
    return TransientError(message)


def _refuse_if_denied(status: str, scan: str) -> None:
    """A document the documents service denied, or whose scan found it infected, is never linkable."""
    if status == "denied" or scan == "infected":
        raise PermanentError(
            f"Telnyx's documents service refused the file (status {status[:20]}, antivirus scan {scan[:20]})"
        )


def _first_error(response: requests.Response) -> dict[str, Any]:
    """The first entry of a v2 error body (`errors[]`), or {} when the body has none."""
    try:
        first = response.json()["errors"][0]
    except (ValueError, KeyError, TypeError, IndexError):
        return {}
    if not isinstance(first, dict):
        return {}
    if not isinstance(first.get("meta"), dict):
        first = {**first, "meta": {}}
    return first


def _is_rate_limit(status: int, first_error: dict[str, Any]) -> bool:
    return status == 429 or str(first_error.get("code")) == RATE_LIMIT_CODE


def retry_after_seconds(response: requests.Response) -> float | None:
    """Honours Retry-After (seconds or HTTP date), then Telnyx's x-ratelimit-reset (seconds)."""
    retry_after = response.headers.get("Retry-After")
    if retry_after:
        with contextlib.suppress(InvalidHeader, ValueError):  # an unparsable value is ignored
            return min(float(_RETRY_AFTER_PARSER.parse_retry_after(retry_after)), MAX_RATE_LIMIT_PAUSE)
    reset = response.headers.get("x-ratelimit-reset")
    if reset:
        try:
            seconds = float(reset)
        except ValueError:
            return None
        if seconds >= _EPOCH_THRESHOLD:
            seconds -= time.time()
        return min(seconds, MAX_RATE_LIMIT_PAUSE) if seconds >= 0 else None
    return None


def api_error_detail(response: requests.Response, sent: tuple[str, ...], first: dict[str, Any]) -> str:
    """The v2 error body's code/title/detail (`first`, its first error) when present, otherwise the
    raw text: without `sent` (redacted, before it is cut short, so that a cut cannot hide an echo
    from it), truncated."""
    try:
        parts = [str(first.get(k)) for k in ("code", "title", "detail") if first.get(k)]
        pointer = (first.get("source") or {}).get("pointer")
        if pointer:
            parts.append(f"at {pointer}")
        if parts:
            return redacted(" ".join(parts), *sent)[:REASON_TEXT_MAX]
    except AttributeError:  # a "source" that is not an object
        pass
    return redacted(" ".join(response.text.split()), *sent)[:REASON_TEXT_MAX] or "(no body)"


# A policy condition S3 quotes in its message (["starts-with", "$key", "direct-uploads/..."]).
_QUOTED_CONDITION = re.compile(r"\[[^\]]*\]|\{[^}]*\}")


def _s3_error(response: requests.Response, sent: tuple[str, ...]) -> tuple[str | None, str]:
    """S3's XML error Code, and Code and Message as text, without echoing anything else: no
    quoted condition (the key is among them: the Location's path) and nothing `sent` (redacted)."""
    try:
        # The body comes from an allow-listed host; Python's expat refuses entity-expansion bombs.
        root = ElementTree.fromstring(response.content)  # noqa: S314
    except ElementTree.ParseError:
        return None, "(no S3 error document)"
    code = root.findtext("Code")
    message = _QUOTED_CONDITION.sub("…", root.findtext("Message") or "")
    parts = [code, redacted(message, *sent)]
    return code, ": ".join(p for p in parts if p)[:REASON_TEXT_MAX] or "(no S3 error code)"


class CredentialsProvider(Protocol):
    def __call__(self) -> TelnyxCredentials: ...

    def refresh(self) -> None:
        """Called after Telnyx refused the credentials: the next call must not use a cached copy."""


class StaticCredentials:
    """Credentials read once from the environment (local runs without Secrets Manager)."""

    def __init__(self, credentials: TelnyxCredentials) -> None:
        self._credentials = credentials

    def __call__(self) -> TelnyxCredentials:
        return self._credentials

    def refresh(self) -> None:
        pass  # nothing to re-read: a fix needs a restart with new environment variables


class SecretCredentials:
    """Reads the credentials secret through a Powertools secrets provider, cached across invocations.

    After a 401 the cache is bypassed once, so a redrive after the secret was fixed succeeds at
    its first attempt instead of waiting for the cache to expire. Records run side by side: a
    refresh asked for while another record is reading still takes effect (a count of refreshes,
    not a flag that reader would clear), and the provider is made once, on the client `new_client`
    gives (the project's timeouts, not the SDK's 60 s default).
    """

    CACHE_SECONDS = 300

    def __init__(self, secret_arn: str, new_client: Callable[[], Any]) -> None:
        self._secret_arn = secret_arn
        self._new_client = new_client
        self._lock = threading.Lock()
        self._provider: parameters.SecretsProvider | None = None
        self._refreshes = 0
        self._refreshes_read = 0

    def refresh(self) -> None:
        with self._lock:
            self._refreshes += 1

    def __call__(self) -> TelnyxCredentials:
        with self._lock:
            if self._provider is None:
                self._provider = parameters.SecretsProvider(boto3_client=self._new_client())
            provider, refreshes = self._provider, self._refreshes
            stale = refreshes != self._refreshes_read
        origin = f"secret {self._secret_arn}"
        try:
            raw = provider.get(self._secret_arn, max_age=self.CACHE_SECONDS, force_fetch=stale)
        except parameters.exceptions.GetParameterError as error:
            raise ConfigurationError(f"cannot read {origin}: {error}") from None
        with self._lock:
            self._refreshes_read = max(self._refreshes_read, refreshes)
        try:
            values = json.loads(raw) if isinstance(raw, str | bytes) else None
        except ValueError:
            raise ConfigurationError(f"{origin} is not JSON") from None
        if not isinstance(values, dict):
            raise ConfigurationError(f"{origin} is not a JSON object")
        return TelnyxCredentials.from_mapping(values, origin)

"""One call to Telnyx's API, and the one mapping of its outcome onto the project's error classes
(`portdocs.errors`): callers never see a requests exception or a status code. Telnyx's rate limit
is per account, so every API shares one gate."""

from __future__ import annotations

import contextlib
import enum
import hashlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from botocore.exceptions import BotoCoreError
from requests_toolbelt import MultipartEncoder
from urllib3.exceptions import ConnectTimeoutError, InvalidHeader, NewConnectionError
from urllib3.util.retry import Retry

from portdocs.errors import AmbiguousError, ConfigurationError, PermanentError, PortdocsError, TransientError
from portdocs.intake import ByteStream
from portdocs.retrying import Deadline
from portdocs.telnyx_credentials import CredentialsProvider, TelnyxCredentials
from portdocs.urls import redacted

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
# Telnyx's answers are JSON of a few KiB; one far larger is not an answer to keep in memory.
MAX_ANSWER_BYTES = 4 * 1024 * 1024
ANSWER_CHUNK = 64 * 1024
# The records a closed gate held back start again spread over this long after it opens.
REOPENING_SPREAD_SECONDS = 1.0
# A wait longer than this is not believed: one odd header must not lock an environment for days.
MAX_RATE_LIMIT_PAUSE = 900.0
# x-ratelimit-reset is documented in seconds; a value this large can only be an epoch moment.
_EPOCH_THRESHOLD = 1e9
_RETRY_AFTER_PARSER = Retry()
# Telnyx's error code for its rate limit, whatever status it comes with.
RATE_LIMIT_CODE = "10011"


class RateLimitGate:
    """Telnyx's rate limit is per account, so one 429 concerns every record of this execution
    environment: all of them wait until the limit resets, not only the record that saw it. Each
    waits a random part of a second more, so that they do not all call again at the same instant
    and meet the limit again together."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float, float], float] = random.uniform,
    ):
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._lock = threading.Lock()
        self._opens_at = 0.0

    def close_for(self, seconds: float) -> None:
        with self._lock:
            self._opens_at = max(self._opens_at, self._clock() + min(seconds, MAX_RATE_LIMIT_PAUSE))

    def wait(self, deadline: Deadline) -> None:
        wait = self._opens_at - self._clock()
        if wait <= 0:
            return
        wait += self._jitter(0.0, REOPENING_SPREAD_SECONDS)
        if wait >= deadline.remaining():
            raise TransientError(f"Telnyx asked for a {wait:.1f}s pause, more than this invocation has", wait)
        self._sleep(wait)


class Auth(enum.Enum):
    """Which credentials a call takes."""

    # The legacy API takes the x-api-user/x-api-token pair or an API key, whichever the account has.
    ACCOUNT = enum.auto()
    # The v2 API takes an API key (Bearer) only.
    API_KEY = enum.auto()

    def headers(self, credentials: TelnyxCredentials) -> dict[str, str]:
        return credentials.bearer_headers() if self is Auth.API_KEY else credentials.headers()


@dataclass(frozen=True)
class ApiCall:
    """One request to Telnyx's API and what its failure means."""

    method: str
    path: str
    json: dict[str, Any] | None = None
    params: dict[str, str] | None = None
    multipart: MultipartEncoder | None = None
    auth: Auth = Auth.ACCOUNT
    timeout: tuple[float, float] = API_TIMEOUT
    # False for a request Telnyx may have acted on although the call failed (a non-idempotent
    # POST): an unknown outcome is then an AmbiguousError, not a plain transient fault.
    repeatable: bool = True
    # False for an endpoint with no id in its path: a 404 there means a wrong base URL or a changed
    # API, which no document can cure (a configuration fault), not a missing resource.
    names_a_resource: bool = True
    # Sees a refusal before it is classified, and may raise a more precise error.
    on_refusal: Callable[[requests.Response], None] | None = None

    @property
    def step(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def secrets(self) -> tuple[str, ...]:
        """What the request carried that must stay out of an error's text: Telnyx may echo the
        file's URL (a bearer link) that it was sent."""
        url = (self.json or {}).get("url")
        return (url,) if isinstance(url, str) else ()


class TelnyxHttp:
    def __init__(
        self,
        base_url: str,
        credentials: CredentialsProvider,
        session: requests.Session | None = None,
        gate: RateLimitGate | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._session = session or requests.Session()
        self._gate = gate or RateLimitGate()

    def send(self, call: ApiCall, deadline: Deadline) -> requests.Response:
        """The answer if it is a success; raises the project's error for anything else."""
        response = self._exchange(call, deadline)
        if 200 <= response.status_code < 300:
            return response
        if response.status_code in (401, 403):
            self._credentials.refresh()
        if call.on_refusal is not None:
            call.on_refusal(response)
        failure = classify_api_failure(response, call)
        if _is_rate_limit(response.status_code, first_error(response)) and isinstance(
            failure, TransientError
        ):
            self._gate.close_for(failure.retry_after or DEFAULT_RATE_LIMIT_PAUSE)
        raise failure

    def _exchange(self, call: ApiCall, deadline: Deadline) -> requests.Response:
        headers = {**call.auth.headers(self._credentials()), "Accept": "application/json"}
        if call.multipart is not None:
            headers["Content-Type"] = call.multipart.content_type
        self._gate.wait(deadline)
        try:
            response = self._session.request(
                call.method,
                f"{self._base_url}{call.path}",
                json=call.json,
                data=call.multipart,
                params=call.params,
                headers=headers,
                timeout=deadline.cap(call.timeout),
                allow_redirects=False,
                stream=True,
            )
            read_answer(response, deadline, call.step, call.repeatable)
            return response
        except requests.RequestException as error:
            fault = f"{call.step} failed: {type(error).__name__}"
            if not call.repeatable and _may_have_reached_telnyx(error):
                raise AmbiguousError(f"{fault}; Telnyx may have recorded it") from None
            raise TransientError(fault) from None
        except BotoCoreError as error:
            raise intake_stream_broke(error) from None


def read_answer(response: requests.Response, deadline: Deadline, step: str, repeatable: bool = True) -> None:
    """Reads the whole answer by the deadline. The read timeout bounds each socket read only: a
    server that drips its answer a byte at a time would hold the record past its invocation.
    By hand because requests has no total timeout; read1 returns whatever each read brings."""
    body = bytearray()
    try:
        while chunk := response.raw.read1(ANSWER_CHUNK, decode_content=True):
            body += chunk
            if deadline.remaining() <= 0 or len(body) > MAX_ANSWER_BYTES:
                _give_up_on_answer(step, repeatable, too_large=len(body) > MAX_ANSWER_BYTES)
    except (urllib3.exceptions.HTTPError, OSError) as error:
        response.close()  # a connection with part of an answer left on it is not reused
        # Raised as requests raises it, so that the caller's one classification applies.
        raise requests.exceptions.ChunkedEncodingError(error) from None
    except PortdocsError:
        response.close()
        raise
    response.raw.release_conn()  # read to its end: the connection goes back to the pool
    response._content = bytes(body)


def _give_up_on_answer(step: str, repeatable: bool, too_large: bool) -> None:
    fault = (
        f"{step}: the answer is over {MAX_ANSWER_BYTES} bytes"
        if too_large
        else f"{step}: the answer did not arrive within this invocation's time"
    )
    if not repeatable:
        raise AmbiguousError(f"{fault}; Telnyx may have recorded it")
    raise TransientError(fault)


class SizedReader:
    """Gives a boto3 streaming body the `len` (bytes still to read) that MultipartEncoder needs
    to compute Content-Length up front; reads stay chunked, so memory stays flat.

    A socket timeout bounds each read, not the whole upload: a server (or intake stream) that takes
    a byte at a time would outlast the invocation, so every chunk checks the deadline."""

    def __init__(self, stream: ByteStream, size: int, deadline: Deadline) -> None:
        self._stream = stream
        self._remaining = size
        self._deadline = deadline
        # What was sent, to hold against a server's account of what it received.
        self.sha256 = hashlib.sha256()

    @property
    def len(self) -> int:
        return self._remaining

    def read(self, amount: int | None = -1) -> bytes:
        if self._deadline.remaining() <= 0:
            raise TransientError("the upload did not finish within this invocation's time")
        chunk = self._stream.read(self._remaining if amount is None or amount < 0 else amount)
        self._remaining -= len(chunk)
        self.sha256.update(chunk)
        return chunk


def intake_stream_broke(error: BotoCoreError) -> TransientError:
    """The intake object's stream broke mid-upload (IncompleteReadError, ResponseStreamingError)."""
    return TransientError(f"reading the intake object failed mid-upload: {type(error).__name__}")


def _may_have_reached_telnyx(error: requests.RequestException) -> bool:
    """False only when the request provably never left: no connection was made."""
    if isinstance(error, requests.ConnectTimeout):
        return False
    if isinstance(error, requests.ConnectionError):
        reason = error.args[0] if error.args else None
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
        return not isinstance(reason, NewConnectionError | ConnectTimeoutError)
    return isinstance(error, requests.Timeout | requests.exceptions.ChunkedEncodingError)


def classify_api_failure(response: requests.Response, call: ApiCall) -> PortdocsError:
    """The one mapping from a failed Telnyx API response to the project's error classes."""
    status = response.status_code
    first = first_error(response)
    message = f"{call.step} answered {status}: {api_error_detail(response, call.secrets, first)}"
    if status in (401, 403):
        return ConfigurationError(f"{message} (check the Telnyx credentials)")
    if status == 405 or (status == 404 and not call.names_a_resource):
        return ConfigurationError(f"{message} (check TELNYX_API_BASE_URL: the endpoint is not there)")
    retry_after = retry_after_seconds(response)
    # Telnyx documents meta.retryable false as final whatever the status (a 409 it will never
    # accept, say); its rate limit and its own failures (5xx) are retried whatever it says.
    retryable = first.get("meta", {}).get("retryable")
    if retryable is False and status < 500 and not _is_rate_limit(status, first):
        return PermanentError(message)
    if status in TRANSIENT_STATUSES or status >= 500 or _is_rate_limit(status, first):
        if not call.repeatable and not _told_not_acted_on(status, first, retry_after):
            return AmbiguousError(f"{message}; Telnyx may have recorded it", retry_after=retry_after)
        return TransientError(message, retry_after=retry_after)
    # A refusal (4xx) the v2 API marks retryable is retried.
    if retryable is True:
        return TransientError(message, retry_after=retry_after)
    if status in PERMANENT_STATUSES:
        return PermanentError(message)
    return TransientError(message)


def _told_not_acted_on(status: int, first: dict[str, Any], retry_after: float | None) -> bool:
    return (
        status in NOT_ACTED_ON_STATUSES
        or _is_rate_limit(status, first)
        or (status == 503 and retry_after is not None)
    )


def first_error(response: requests.Response) -> dict[str, Any]:
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

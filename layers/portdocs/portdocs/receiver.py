"""The webhook receiver: Telnyx's porting notifications over HTTPS (docs/security.md, "The public
endpoint").

Every request is bounded first (method, content type, size: header and length checks that read
nothing of the body), then verified (Ed25519, portdocs.webhook_signature) before a byte of it is
parsed. Only a verified notification is read, and it is on the notifications queue before the 2xx:
Telnyx retries anything else. A refused request is answered, counted by reason and logged with
its size and reason only.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from portdocs.errors import PermanentError, PortdocsError, TransientError
from portdocs.notifications_queue import NotificationsQueue
from portdocs.observability import count, logger
from portdocs.porting_status import PortingEvent
from portdocs.webhook_signature import SignatureRefused, WebhookKey

# Telnyx's porting notifications are a few KiB; anything far larger is not one.
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str

    def as_response(self) -> dict[str, Any]:
        return {
            "statusCode": self.status,
            "headers": {"content-type": "application/json"},
            "body": json.dumps({"status": self.status, "reason": self.reason}),
        }


ACCEPTED = Answer(202, "queued")


class Receiver:
    def __init__(self, key: Callable[[], WebhookKey | None], queue: NotificationsQueue) -> None:
        # The key is read when a request needs it (cached by the caller): a key set after the
        # deploy takes effect without one.
        self._key = key
        self._queue = queue

    def receive(self, event: dict[str, Any], now: float | None = None) -> Answer:
        """Answers one HTTP request (Lambda's payload format 2.0: a function URL's or an HTTP API's)."""
        request = _Request.of(event)
        answer = self._bounded(request) or self._verified(request, time.time() if now is None else now)
        if answer is not None:
            count(f"NotificationsRefused{answer.status}")
            logger.warning(
                "notification refused",
                extra={"status": answer.status, "reason": answer.reason, "size": request.size},
            )
            return answer
        return self._queued(request)

    def _bounded(self, request: _Request) -> Answer | None:
        if request.method != "POST":
            return Answer(405, "only POST")
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return Answer(415, "content-type must be application/json")
        if request.size > MAX_BODY_BYTES:
            return Answer(413, f"body over {MAX_BODY_BYTES} bytes")
        return None

    def _verified(self, request: _Request, now: float) -> Answer | None:
        try:
            key = self._key()
        except TransientError:
            # The key could not be read (Secrets Manager unreachable): Telnyx sends it again.
            return Answer(503, "the webhook public key cannot be read now")
        if key is None:
            # Fail closed: with no key to check against, nothing can be told from a forgery.
            return Answer(401, "no usable webhook public key is configured")
        body = request.body()
        if body is None:
            return Answer(401, "body is not valid base64")
        try:
            key.verify(request.headers, body, now)
        except SignatureRefused as refused:
            return Answer(401, str(refused))
        return None

    def _queued(self, request: _Request) -> Answer:
        try:
            event = PortingEvent.from_telnyx(json.loads(request.body() or b""), received_via="webhook")
        except (ValueError, RecursionError, PermanentError) as error:  # RecursionError: nesting
            # Signed by Telnyx, yet not a notification portdocs can read: Telnyx's delivery log shows
            # the refusal; retrying it would not change it.
            count("NotificationsMalformed")
            logger.warning(
                "signed notification refused", extra={"reason": str(error)[:300], "size": request.size}
            )
            return Answer(422, "not a porting notification")
        try:
            self._queue.send([event])
        except PortdocsError as error:
            count("NotificationsNotQueued")
            logger.error(
                "could not queue a verified notification; Telnyx will send it again",
                extra={"error": str(error)},
            )
            return Answer(503, "try again")
        count("NotificationsReceived")
        return ACCEPTED


@dataclass(frozen=True)
class _Request:
    method: str
    headers: dict[str, str]
    raw_body: str
    base64_encoded: bool

    @classmethod
    def of(cls, event: dict[str, Any]) -> _Request:
        http = (event.get("requestContext") or {}).get("http") or {}
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        return cls(
            method=str(http.get("method", "")).upper(),
            headers=headers,
            raw_body=str(event.get("body") or ""),
            base64_encoded=bool(event.get("isBase64Encoded")),
        )

    @property
    def size(self) -> int:
        # Base64 is 4 characters per 3 bytes: an upper bound on the body without decoding it.
        return (
            len(self.raw_body) * 3 // 4
            if self.base64_encoded
            else len(self.raw_body.encode("utf-8", "surrogatepass"))
        )

    def body(self) -> bytes | None:
        """The raw bytes Telnyx signed."""
        if not self.base64_encoded:
            return self.raw_body.encode("utf-8", "surrogatepass")
        try:
            return base64.b64decode(self.raw_body, validate=True)
        except (binascii.Error, ValueError):
            return None

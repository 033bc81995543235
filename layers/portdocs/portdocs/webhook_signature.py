"""Telnyx's webhook signature: Ed25519 over "{telnyx-timestamp}|{raw body}" with the account's
public key, the signature in `telnyx-signature-ed25519` (docs/security.md, "The public endpoint").

Verified with pyca `cryptography`, never with the `telnyx` package (two of its releases on the
package index were malicious). Everything here looks at headers and bytes only: nothing of an
unverified body is parsed.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"
# Telnyx's own libraries accept a timestamp up to 300 s either side of the receiver's clock: a
# captured notification replayed later than that is refused whatever its signature.
TOLERANCE_SECONDS = 300
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
# Unix seconds, as Telnyx sends them: digits only, so a header like "1e9" or " 17…" is refused.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class SignatureRefused(Exception):
    """Why a request is not Telnyx's: a short reason, safe to log and to count by."""


@dataclass(frozen=True)
class WebhookKey:
    """The account's public key (Telnyx's portal, "Keys & Credentials"), base64 of 32 raw bytes."""

    key: Ed25519PublicKey

    @classmethod
    def from_base64(cls, text: str) -> WebhookKey:
        raw = _decoded(text.strip(), PUBLIC_KEY_BYTES, "public key")
        return cls(Ed25519PublicKey.from_public_bytes(raw))

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        """Raises SignatureRefused unless `body` was signed by this key within the tolerance of
        `now`. `headers` must have lower-case names (Lambda's HTTP events do)."""
        timestamp = headers.get(TIMESTAMP_HEADER)
        signature = headers.get(SIGNATURE_HEADER)
        if timestamp is None or signature is None:
            raise SignatureRefused("missing signature headers")
        if not _TIMESTAMP.fullmatch(timestamp):
            raise SignatureRefused("malformed timestamp")
        if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
            raise SignatureRefused("timestamp outside the tolerance")
        raw_signature = _decoded(signature, SIGNATURE_BYTES, "signature")
        try:
            self.key.verify(raw_signature, timestamp.encode("ascii") + b"|" + body)
        except InvalidSignature:
            raise SignatureRefused("signature does not match") from None


def _decoded(text: str, length: int, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRefused(f"malformed {what}") from None
    if len(raw) != length:
        raise SignatureRefused(f"malformed {what}")
    return raw

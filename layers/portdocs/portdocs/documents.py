"""Domain rules for a supporting document: types, intake key layout, content checks (pure).

Nothing here touches the network; adapters call these rules and the services act on the result.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import SplitResult, quote, quote_plus, unquote, unquote_plus, urlsplit

import filetype

from portdocs import shapes
from portdocs.errors import PermanentError

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# filetype needs the first 261 bytes to recognise every format it knows.
SNIFF_BYTES = 261
# S3 keys are at most 1,024 bytes of UTF-8; a longer one names no object that can exist.
S3_KEY_MAX_BYTES = 1024
# DynamoDB keys are at most 2,048 bytes; an id longer than this names its key by a digest instead.
LEDGER_ID_MAX_BYTES = 1024
# S3 object tags allow letters, digits, white space and + - = . _ : / @, at most 256 characters.
_TAG_FORBIDDEN = re.compile(r"[^A-Za-z0-9 +\-=._:/@]")
TAG_VALUE_MAX = 256


class DocumentType(enum.StrEnum):
    LOA = "loa"
    CSR = "csr"
    INVOICE = "invoice"
    OTHER = "other"

    @classmethod
    def parse(cls, raw: str) -> DocumentType:
        try:
            return cls(raw.strip().lower())
        except ValueError:
            allowed = ", ".join(t.value for t in cls)
            raise PermanentError(f"unknown document type {raw!r}: use one of {allowed}") from None


class State(enum.StrEnum):
    """A document's state in the ledger; see TERMINAL_STATES."""

    RECEIVED = "received"
    UPLOADED = "uploaded"
    ASSOCIATED = "associated"
    REJECTED = "rejected"
    # A newer version of the same key arrived before this one was sent: the latest is meant.
    SUPERSEDED = "superseded"
    # The object was deleted before it was sent: the person took it back.
    WITHDRAWN = "withdrawn"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({State.ASSOCIATED, State.REJECTED, State.SUPERSEDED, State.WITHDRAWN})


@dataclass(frozen=True)
class DraftTarget:
    """A draft sub-request: Telnyx's draft-port-request flow (its API prefix is on Telnyx's retired
    list; kept for the accounts that have drafts)."""

    draft_port_request_id: str
    draft_sub_request_id: str
    document_type: DocumentType

    def __post_init__(self) -> None:
        _check_ids(self, "draft_port_request_id", "draft_sub_request_id")

    def as_message(self) -> dict[str, str]:
        """The target's fields, as every message, ledger item and event names them."""
        return {
            "draft_port_request_id": self.draft_port_request_id,
            "draft_sub_request_id": self.draft_sub_request_id,
            "document_type": str(self.document_type),
        }


@dataclass(frozen=True)
class PortingOrderTarget:
    """A porting order: Telnyx's current API (v2), through its documents service."""

    porting_order_id: str
    document_type: DocumentType

    def __post_init__(self) -> None:
        _check_ids(self, "porting_order_id")

    def as_message(self) -> dict[str, str]:
        return {"porting_order_id": self.porting_order_id, "document_type": str(self.document_type)}

    @property
    def is_order_document(self) -> bool:
        """An order has one LOA and one invoice of its own (documents.loa, documents.invoice);
        every other type is one of its additional documents."""
        return self.document_type in (DocumentType.LOA, DocumentType.INVOICE)


Target = DraftTarget | PortingOrderTarget
# The intake folder that holds porting-order documents. It is also a valid draft port request id,
# but Telnyx's ids are UUIDs: a folder of this name always means porting orders.
PORTING_ORDERS_FOLDER = "porting-orders"


def _check_ids(target: Target, *names: str) -> None:
    # Telnyx ids are UUIDs; anything that could leave the URL path segment it is put into is refused.
    for name in names:
        value = getattr(target, name)
        if not shapes.is_valid_id(value):
            raise PermanentError(f"{name} {value!r} is not a valid id (letters, digits, '.', '_', '-'; at most 128)")


def target_of(fields: dict[str, Any]) -> Target:
    """The target a message or ledger item names (validated against its schema already)."""
    document_type = DocumentType.parse(str(fields["document_type"]))
    if fields.get("porting_order_id") is not None:
        return PortingOrderTarget(str(fields["porting_order_id"]), document_type)
    return DraftTarget(str(fields["draft_port_request_id"]), str(fields["draft_sub_request_id"]), document_type)


# Every field a target is named by, in messages, ledger items and events.
TARGET_FIELDS = ("draft_port_request_id", "draft_sub_request_id", "porting_order_id", "document_type")


def target_label(fields: dict[str, Any]) -> str:
    """How ledger ids name a target, from its fields as a target or a message states them (not
    necessarily valid: a malformed message's claim is named the same way)."""
    if "porting_order_id" in fields:
        # ":" is outside the id alphabet: no draft's label can read like this.
        return f"porting-order:{fields['porting_order_id']}/{fields.get('document_type')}"
    draft = ("draft_port_request_id", "draft_sub_request_id", "document_type")
    return "/".join(str(fields.get(name)) for name in draft)


def names_a_target(fields: dict[str, Any]) -> bool:
    return "porting_order_id" in fields or "draft_sub_request_id" in fields


@dataclass(frozen=True)
class IntakeKey:
    """`{draft_port_request_id}/{draft_sub_request_id}/{document_type}/{file name}`, or
    `porting-orders/{porting_order_id}/{document_type}/{file name}`."""

    target: Target
    file_name: str

    @classmethod
    def parse(cls, key: str) -> IntakeKey:
        parts = key.split("/")
        if len(parts) != 4 or not all(parts):
            raise PermanentError(
                f"object key {key!r} does not follow the intake layout "
                "{draft_port_request_id}/{draft_sub_request_id}/{document_type}/{file name} or "
                f"{PORTING_ORDERS_FOLDER}/{{porting_order_id}}/{{document_type}}/{{file name}}"
            )
        first, second, document_type, file_name = parts
        target: Target
        if first == PORTING_ORDERS_FOLDER:
            target = PortingOrderTarget(second, DocumentType.parse(document_type))
        else:
            target = DraftTarget(first, second, DocumentType.parse(document_type))
        return cls(target=target, file_name=file_name)

    @staticmethod
    def of(target: Target, file_name: str) -> str:
        """The key a file for `target` is dropped under (`portdocs drop`)."""
        if isinstance(target, PortingOrderTarget):
            return f"{PORTING_ORDERS_FOLDER}/{target.porting_order_id}/{target.document_type}/{file_name}"
        return f"{target.draft_port_request_id}/{target.draft_sub_request_id}/{target.document_type}/{file_name}"


def check_key(key: str) -> str:
    if len(key.encode()) > S3_KEY_MAX_BYTES:
        raise PermanentError(f"the object key is {len(key.encode())} bytes, over S3's limit of {S3_KEY_MAX_BYTES}")
    return key


def is_folder_placeholder(key: str, size: int) -> bool:
    """Consoles create empty `folder/` objects; they are not documents."""
    return key.endswith("/") and size == 0


def file_name_of(key: str) -> str:
    return key.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class SourceObject:
    """The intake object a document came from; its identity is what makes a delivery a duplicate."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None

    @property
    def identity(self) -> str:
        # A version id names one immutable object; without versioning the ETag stands in for it.
        revision = self.version_id or (self.etag or "").strip('"') or "unversioned"
        identity = f"s3://{self.bucket}/{self.key}#{revision}"
        if len(identity.encode()) <= LEDGER_ID_MAX_BYTES:
            return identity
        # Stable and short enough for a DynamoDB key, whatever the key and version lengths.
        return f"s3://{self.bucket}/sha256:{hashlib.sha256(identity.encode()).hexdigest()}"

    def as_message(self) -> dict[str, str]:
        message = {"bucket": self.bucket, "key": self.key}
        if self.version_id:
            message["version_id"] = self.version_id
        if self.etag:
            message["etag"] = self.etag.strip('"')
        return message


def document_id(source: SourceObject, target: Target | None) -> str:
    """Ledger id of an intake object sent to a target: the same object asked for twice for the
    same target and type is one document, whether by S3 event or upload request."""
    if target is None:
        return source.identity
    return claimed_document_id(source, target.as_message())


def claimed_document_id(source: SourceObject, target_fields: dict[str, str]) -> str:
    """The same id, from target fields as a message states them (not yet validated): lets a
    malformed message that names its document be recorded against that document."""
    return f"{source.identity} -> {target_label(target_fields)}"


def association_document_id(target: Target, upload: Upload) -> str:
    """Ledger id of a document that arrived as an association request with no intake object."""
    digest = hashlib.sha256(upload.reference.encode()).hexdigest()[:24]
    return f"association:{target_label(target.as_message())}/{digest}"


def sniff_content_type(head: bytes) -> str | None:
    """The content type the bytes really are (from magic numbers, never from the file name)."""
    kind = filetype.guess(head)
    return kind.mime if kind else None


def check_size(size: int, max_bytes: int) -> None:
    if size == 0:
        raise PermanentError("the file is empty")
    if size > max_bytes:
        raise PermanentError(f"the file is {size} bytes, over the limit of {max_bytes} bytes")


def check_content_type(head: bytes, allowed_content_types: tuple[str, ...]) -> str:
    """Validates the document's real type; returns the content type to declare to Telnyx."""
    content_type = sniff_content_type(head)
    allowed = ", ".join(allowed_content_types)
    if content_type is None:
        raise PermanentError(f"the file's type could not be recognised; allowed types: {allowed}")
    if content_type not in allowed_content_types:
        raise PermanentError(f"the file is {content_type}, which is not allowed; allowed: {allowed}")
    return content_type


def secure_url(url: str) -> SplitResult:
    """The URL's parts, once it is https (plain http only to a loopback host: local runs) and
    carries no credentials: what every URL a document or a credential travels to must be.

    Reasons name the scheme and host at most, never the path: a Location is a bearer link to the
    file, and reasons reach logs, tags and the ledger."""
    try:
        # urlsplit raises on an unbalanced "[" or a netloc that NFKC normalisation changes.
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as error:
        raise PermanentError(f"the URL is malformed: {error}") from None
    host = (parts.hostname or "").lower()
    if not host:
        raise PermanentError("the URL has no host")
    if parts.scheme != "https" and not (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        raise PermanentError(f"the URL must use https, not {parts.scheme or 'no scheme'!r} (host {host!r})")
    if parts.username or parts.password:
        raise PermanentError("URL must not carry user credentials")
    return parts


def check_url_allowed(url: str, allowed_hosts: tuple[str, ...]) -> None:
    """Refuses URLs that are not secure (secure_url) or whose host is outside the allow-list."""
    parts = secure_url(url)
    host, port = (parts.hostname or "").lower(), parts.port
    candidates = {host} if port is None else {f"{host}:{port}"}
    if port is None or port == {"https": 443, "http": 80}.get(parts.scheme):
        candidates.add(host)
    if not candidates & set(allowed_hosts):
        raise PermanentError(f"URL host {parts.netloc!r} is not in ALLOWED_UPLOAD_HOSTS ({', '.join(allowed_hosts)})")


# A URL as is, JSON-escaped (https:\/\/), percent-encoded once or twice (https%3A%2F%2F): scheme,
# host, rest. Wherever it starts: a URL may be glued to what precedes it ("id_https://", "%3Dhttps").
_URL_PATH = re.compile(r"(?i)(https?)(?::|%3A|%253A)(?:\\?/|%2F|%252F){2}([^\s/\\?#%\"'<>]+)[^\s\"'<>]*")
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
# A secret shorter than this would match ordinary words ("loa", "the").
_SHORTEST_SECRET = 8


def _unescaped(text: str) -> str:
    """Text as a reader would see it: HTML entities (&#x2F;) and JSON's \\u escapes (\\u002F) decoded."""
    # Imported here, not at the top: its entity table would cost every cold start, for error text.
    import html

    return _UNICODE_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), html.unescape(text))


def without_url_paths(text: str) -> str:
    """A reason for people and systems to read: any URL in it (Telnyx may echo the Location, a
    bearer link to the file) keeps its scheme and host only, in whichever form it was echoed."""
    return _URL_PATH.sub(r"\1://\2/…", _unescaped(text))


def redacted(text: str, *secrets: str) -> str:
    """Text from a server, without any of `secrets` (a URL it was sent, an object key) in the forms
    an echo takes: as is, percent-encoded or decoded (+ or %20 for a space, once or twice), or
    JSON-escaped. Each segment of a secret's path counts on its own: the random one (direct-uploads/
    <uuid>/...) is what makes a Location a bearer link, and it survives any encoding. Then
    without_url_paths, for URLs it was not sent."""
    values = set()
    for secret in secrets:
        path = urlsplit(secret).path if secret.lower().startswith(("http://", "https://")) else secret
        once, twice = unquote_plus(path), unquote_plus(unquote_plus(path))
        for value in (secret, path.lstrip("/"), once.lstrip("/"), *once.split("/"), *twice.split("/")):
            values |= {value, unquote(value), unquote_plus(value), quote(value, safe=""), quote(value)}
            values |= {quote_plus(value), quote(quote(value, safe=""), safe="")}
    values = {v for v in values if len(v) >= _SHORTEST_SECRET}
    text = _unescaped(text)
    for value in sorted(values | {v.replace("/", "\\/") for v in values}, key=len, reverse=True):
        text = text.replace(value, "…")
    return without_url_paths(text)


def sanitise_tag_value(value: str) -> str:
    """Maps free text onto S3's tag alphabet so a reason can always be stored as a tag."""
    return _TAG_FORBIDDEN.sub("_", value)[:TAG_VALUE_MAX]


# Telnyx's documents service (porting orders): what it accepts, checked before a byte is sent.
DOCUMENTS_SERVICE_MAX_BYTES = 20 * 1024 * 1024
DOCUMENTS_SERVICE_NAME_MAX = 512
DOCUMENTS_SERVICE_CONTENT_TYPES = frozenset(
    {
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
    }
)
# The documents service deletes a document not linked to anything within 30 minutes of its upload.
# One older than this is uploaded again rather than offered: the margin covers the attach itself
# and clocks that disagree.
UNLINKED_DOCUMENT_LIFETIME_SECONDS = 30 * 60
REUPLOAD_AFTER_SECONDS = UNLINKED_DOCUMENT_LIFETIME_SECONDS - 5 * 60


def check_fits_target(target: Target, file_name: str, size: int, content_type: str) -> None:
    """What the target's Telnyx service would refuse, refused before the upload with the reason."""
    if not isinstance(target, PortingOrderTarget):
        return
    check_size(size, DOCUMENTS_SERVICE_MAX_BYTES)
    if content_type not in DOCUMENTS_SERVICE_CONTENT_TYPES:
        raise PermanentError(f"Telnyx's documents service (porting orders) does not accept {content_type}")
    name = file_name.replace(" ", "")  # Telnyx removes spaces itself
    if len(name) > DOCUMENTS_SERVICE_NAME_MAX or not name.isprintable():
        raise PermanentError(
            f"Telnyx's documents service takes file names of up to {DOCUMENTS_SERVICE_NAME_MAX} printable characters"
        )


@dataclass(frozen=True)
class Upload:
    """Where an uploaded file is on Telnyx's side: the files service's Location (draft flow, a
    bearer link to the file), or a documents-service id and when it was uploaded (porting orders:
    Telnyx deletes it unless it is linked within 30 minutes)."""

    location_url: str | None = None
    telnyx_document_id: str | None = None
    uploaded_at: float | None = None

    @property
    def reference(self) -> str:
        """What names the uploaded file: the same reference is the same upload."""
        return self.location_url or f"telnyx-document:{self.telnyx_document_id}"

    def outlived(self, now: float) -> bool:
        """A documents-service upload too old to be linked any more (or soon gone)."""
        return self.uploaded_at is not None and now - self.uploaded_at > REUPLOAD_AFTER_SECONDS

    def as_fields(self) -> dict[str, Any]:
        """As messages and the ledger name it."""
        if self.location_url is not None:
            return {"url": self.location_url}
        fields: dict[str, Any] = {"telnyx_document_id": self.telnyx_document_id}
        if self.uploaded_at is not None:
            fields["uploaded_at"] = iso_timestamp(self.uploaded_at)
        return fields

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Upload | None:
        if fields.get("url"):
            return cls(location_url=str(fields["url"]))
        if fields.get("telnyx_document_id"):
            uploaded_at = fields.get("uploaded_at")
            return cls(
                telnyx_document_id=str(fields["telnyx_document_id"]),
                uploaded_at=parse_timestamp(str(uploaded_at)) if uploaded_at else None,
            )
        return None


def iso_timestamp(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_timestamp(text: str) -> float:
    """Epoch seconds of an ISO 8601 time that can also be written back (iso_timestamp): a time at
    the very edge of the calendar ("9999-12-31T23:59:59-01:00") parses, but not in UTC."""
    try:
        seconds = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        iso_timestamp(seconds)
    except (ValueError, OverflowError, OSError):
        raise PermanentError(f"{text[:40]!r} is not an ISO 8601 time portdocs can keep") from None
    return seconds


@dataclass(frozen=True)
class Document:
    """One intake object on its way to its target."""

    source: SourceObject
    target: Target
    description: str
    size: int

    @property
    def document_id(self) -> str:
        return document_id(self.source, self.target)

    @property
    def file_name(self) -> str:
        return file_name_of(self.source.key)

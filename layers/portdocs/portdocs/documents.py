"""Domain rules for a supporting document: types, intake key layout, content checks (pure).

Nothing here touches the network; adapters call these rules and the services act on the result.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar

import filetype

from portdocs import shapes
from portdocs.errors import PermanentError
from portdocs.timestamps import parse_utc_iso, utc_iso

# filetype needs the first 261 bytes to recognise every format it knows.
SNIFF_BYTES = 261
# S3 keys are at most 1,024 bytes of UTF-8; a longer one names no object that can exist.
S3_KEY_MAX_BYTES = 1024
# DynamoDB keys are at most 2,048 bytes; an id longer than this names its key by a digest instead.
LEDGER_ID_MAX_BYTES = 1024


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


# Each target is named in messages, ledger items and events by its own fields; `NAMED_BY` is the
# one field whose presence says which target a message or item names.


@dataclass(frozen=True)
class DraftTarget:
    """A draft sub-request: Telnyx's draft-port-request flow (its API prefix is on Telnyx's retired
    list; kept for the accounts that have drafts)."""

    draft_port_request_id: str
    draft_sub_request_id: str
    document_type: DocumentType

    NAMED_BY: ClassVar[str] = "draft_sub_request_id"
    FIELDS: ClassVar[tuple[str, ...]] = ("draft_port_request_id", "draft_sub_request_id", "document_type")

    def __post_init__(self) -> None:
        _check_ids(self, "draft_port_request_id", "draft_sub_request_id")

    def as_message(self) -> dict[str, str]:
        """The target's fields, as every message, ledger item and event names them."""
        return {
            "draft_port_request_id": self.draft_port_request_id,
            "draft_sub_request_id": self.draft_sub_request_id,
            "document_type": str(self.document_type),
        }

    def intake_key(self, file_name: str) -> str:
        """The key a file for this target is dropped under (`portdocs drop`)."""
        return f"{self.draft_port_request_id}/{self.draft_sub_request_id}/{self.document_type}/{file_name}"

    @property
    def short_name(self) -> str:
        """Which flow and where, for a person, ids cut to their first 8 characters."""
        return f"draft {self.draft_port_request_id[:8]}…/{self.draft_sub_request_id[:8]}…"

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> DraftTarget:
        return cls(
            str(fields["draft_port_request_id"]),
            str(fields["draft_sub_request_id"]),
            DocumentType.parse(str(fields["document_type"])),
        )

    @classmethod
    def from_key(cls, first: str, second: str, document_type: str) -> DraftTarget | None:
        return cls(first, second, DocumentType.parse(document_type))

    @classmethod
    def label_of(cls, fields: dict[str, Any]) -> str:
        return "/".join(str(fields.get(name)) for name in cls.FIELDS)


@dataclass(frozen=True)
class PortingOrderTarget:
    """A porting order: Telnyx's current API (v2), through its documents service."""

    porting_order_id: str
    document_type: DocumentType

    NAMED_BY: ClassVar[str] = "porting_order_id"
    FIELDS: ClassVar[tuple[str, ...]] = ("porting_order_id", "document_type")
    # The intake folder that holds porting-order documents. It is also a valid draft port request
    # id, but Telnyx's ids are UUIDs: a folder of this name always means porting orders.
    FOLDER: ClassVar[str] = "porting-orders"

    def __post_init__(self) -> None:
        _check_ids(self, "porting_order_id")

    def as_message(self) -> dict[str, str]:
        return {"porting_order_id": self.porting_order_id, "document_type": str(self.document_type)}

    def intake_key(self, file_name: str) -> str:
        return f"{self.FOLDER}/{self.porting_order_id}/{self.document_type}/{file_name}"

    @property
    def short_name(self) -> str:
        return f"porting order {self.porting_order_id[:8]}…"

    @property
    def is_order_document(self) -> bool:
        """An order has one LOA and one invoice of its own (documents.loa, documents.invoice);
        every other type is one of its additional documents."""
        return self.document_type in (DocumentType.LOA, DocumentType.INVOICE)

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> PortingOrderTarget:
        return cls(str(fields["porting_order_id"]), DocumentType.parse(str(fields["document_type"])))

    @classmethod
    def from_key(cls, first: str, second: str, document_type: str) -> PortingOrderTarget | None:
        return cls(second, DocumentType.parse(document_type)) if first == cls.FOLDER else None

    @classmethod
    def label_of(cls, fields: dict[str, Any]) -> str:
        # ":" is outside the id alphabet: no draft's label can read like this.
        return f"porting-order:{fields.get('porting_order_id')}/{fields.get('document_type')}"


Target = DraftTarget | PortingOrderTarget
# Where a message, ledger item or intake key is matched to its kind of target, in this order: the
# draft's key layout takes any first folder, so it comes last. A new kind of target is one line here.
TARGET_TYPES: tuple[type[PortingOrderTarget] | type[DraftTarget], ...] = (PortingOrderTarget, DraftTarget)
# Every field a target is named by, in messages, ledger items and events.
TARGET_FIELDS = tuple(dict.fromkeys(name for kind in TARGET_TYPES for name in kind.FIELDS))


def _check_ids(target: Target, *names: str) -> None:
    # Telnyx ids are UUIDs; anything that could leave the URL path segment it is put into is refused.
    for name in names:
        value = getattr(target, name)
        if not shapes.is_valid_id(value):
            raise PermanentError(
                f"{name} {value!r} is not a valid id (letters, digits, '.', '_', '-'; at most 128)"
            )


def target_of(fields: dict[str, Any]) -> Target:
    """The target a message or ledger item names (validated against its schema already)."""
    for kind in TARGET_TYPES:
        if fields.get(kind.NAMED_BY) is not None:
            return kind.from_fields(fields)
    raise PermanentError(
        f"the message names no target: give one of {', '.join(k.NAMED_BY for k in TARGET_TYPES)}"
    )


def target_label(fields: dict[str, Any]) -> str:
    """How ledger ids name a target, from its fields as a target or a message states them (not
    necessarily valid: a malformed message's claim is named the same way)."""
    for kind in TARGET_TYPES:
        if kind.NAMED_BY in fields:
            return kind.label_of(fields)
    return DraftTarget.label_of(fields)  # names the absent fields "None", as ledger ids always have


def names_a_target(fields: dict[str, Any]) -> bool:
    return any(kind.NAMED_BY in fields for kind in TARGET_TYPES)


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
                f"{PortingOrderTarget.FOLDER}/{{porting_order_id}}/{{document_type}}/{{file name}}"
            )
        first, second, document_type, file_name = parts
        for kind in TARGET_TYPES:
            target = kind.from_key(first, second, document_type)
            if target is not None:
                return cls(target=target, file_name=file_name)
        raise AssertionError("the draft layout takes every key")  # pragma: no cover


def check_key(key: str) -> str:
    if len(key.encode()) > S3_KEY_MAX_BYTES:
        raise PermanentError(
            f"the object key is {len(key.encode())} bytes, over S3's limit of {S3_KEY_MAX_BYTES}"
        )
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
    if _is_hevc_heif(head):
        return "image/heic"
    kind = filetype.guess(head)
    return kind.mime if kind else None


# HEIF file-type brands of HEVC-coded images and sequences (ISO/IEC 23008-12): filetype knows only
# `heic`, and so missed the 10-bit `heix` some phones write.
HEVC_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})


def _is_hevc_heif(head: bytes) -> bool:
    """An ISO base media file whose `ftyp` box names an HEVC HEIF brand, major or compatible."""
    if len(head) < 16 or head[4:8] != b"ftyp":
        return False
    size = int.from_bytes(head[:4], "big")
    brands = [head[8:12]] + [head[at : at + 4] for at in range(16, min(size, len(head)) - 3, 4)]
    return any(brand in HEVC_HEIF_BRANDS for brand in brands)


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


# The documents service deletes a document not linked to anything within 30 minutes of its upload.
# One older than this is uploaded again rather than offered: the margin covers the attach itself
# and clocks that disagree.
UNLINKED_DOCUMENT_LIFETIME_SECONDS = 30 * 60
REUPLOAD_AFTER_SECONDS = UNLINKED_DOCUMENT_LIFETIME_SECONDS - 5 * 60


@dataclass(frozen=True)
class LocationUpload:
    """The draft flow's upload: the files service's Location, a bearer link to the file."""

    location_url: str

    @property
    def reference(self) -> str:
        """What names the uploaded file: the same reference is the same upload."""
        return self.location_url

    def outlived(self, now: float) -> bool:
        return False  # the files service keeps what it holds

    def expired_among(self, expired_document_ids: frozenset[str]) -> bool:
        return False

    def as_fields(self) -> dict[str, Any]:
        """As messages name it."""
        return {"url": self.location_url}

    def key_fields(self) -> dict[str, str]:
        """What makes two associations of it the same one (with the target)."""
        return {"url": self.location_url}


@dataclass(frozen=True)
class DocumentUpload:
    """The porting-order flow's upload: a documents-service id and when it was uploaded (Telnyx
    deletes it unless it is linked within 30 minutes)."""

    telnyx_document_id: str
    uploaded_at: float | None = None

    @property
    def reference(self) -> str:
        return f"telnyx-document:{self.telnyx_document_id}"

    def outlived(self, now: float) -> bool:
        """Too old to be linked any more (or soon gone)."""
        return self.uploaded_at is not None and now - self.uploaded_at > REUPLOAD_AFTER_SECONDS

    def expired_among(self, expired_document_ids: frozenset[str]) -> bool:
        """Whether Telnyx deleted this very upload (the ledger keeps the ids of those it did)."""
        return self.telnyx_document_id in expired_document_ids

    def as_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"telnyx_document_id": self.telnyx_document_id}
        if self.uploaded_at is not None:
            fields["uploaded_at"] = utc_iso(self.uploaded_at)
        return fields

    def key_fields(self) -> dict[str, str]:
        return {"telnyx_document_id": self.telnyx_document_id}


Upload = LocationUpload | DocumentUpload


def upload_of(fields: dict[str, Any]) -> Upload | None:
    """The upload that message fields (`url`, or `telnyx_document_id` and `uploaded_at`) name."""
    if fields.get("url"):
        return LocationUpload(str(fields["url"]))
    if fields.get("telnyx_document_id"):
        uploaded_at = fields.get("uploaded_at")
        return DocumentUpload(
            str(fields["telnyx_document_id"]), parse_utc_iso(str(uploaded_at)) if uploaded_at else None
        )
    return None


@dataclass(frozen=True)
class Association:
    """A document attached to its target: the associator's idempotent step caches this, so a
    redelivery finishes the bookkeeping without attaching a second time."""

    telnyx_document_id: str
    # An earlier attempt's outcome was unknown: Telnyx may hold a second copy.
    possible_duplicate: bool = False


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

"""The message shapes portdocs consumes and produces: parse, validate against the published
JSON Schemas (`portdocs/schemas/`, see `portdocs.shapes`), serialise.

Every malformed message ends here as a PermanentError with a reason: a message that cannot be
read is rejected at once, never retried (retrying cannot make it readable).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from portdocs.documents import (
    TARGET_FIELDS,
    Document,
    SourceObject,
    Target,
    Upload,
    check_key,
    target_of,
    upload_of,
)
from portdocs.errors import PermanentError
from portdocs.shapes import (
    ASSOCIATION_REQUEST_SCHEMA,
    S3_NOTIFICATION_SCHEMA,
    UPLOAD_REQUEST_SCHEMA,
    validate,
)


@dataclass(frozen=True)
class IntakeObject:
    """One intake object to upload: from an S3 notification or from an upload request message.

    An S3 notification pins the exact version (or, where S3 sends no version id, the ETag) and
    carries no target (the key layout gives it); an upload request names the target and either
    names a version on purpose (`portdocs retry`) or leaves the current one to be resolved.
    """

    source: SourceObject
    size: int | None = None
    target: Target | None = None
    description: str | None = None
    # The version named is the document, but the key's latest version is still what is meant.
    newer_version_wins: bool = False

    @property
    def names_version(self) -> bool:
        return self.target is not None and bool(self.source.version_id or self.source.etag)

    @property
    def version_pinned_on_purpose(self) -> bool:
        """An upload request that names a version (or ETag) means that one, even if a newer exists,
        unless it says a newer version wins."""
        return self.names_version and not self.newer_version_wins


@dataclass(frozen=True)
class AssociationRequest:
    target: Target
    description: str
    upload: Upload
    source: SourceObject | None = None

    @classmethod
    def of(cls, document: Document, upload: Upload) -> AssociationRequest:
        """The uploader's hand-off: `document`, uploaded as `upload`."""
        return cls(
            target=document.target, description=document.description, upload=upload, source=document.source
        )

    def to_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            **self.target.as_message(),
            "description": self.description,
            **self.upload.as_fields(),
        }
        if self.source:
            message["source"] = self.source.as_message()
        return message


def load_json(body: str) -> Any:
    try:
        message = json.loads(body)
        # A "\\ud800" escape is valid JSON but no valid text: it would fail deep in botocore or
        # in hashing, long after the message should have been refused.
        json.dumps(message, ensure_ascii=False).encode()
        return message
    except UnicodeEncodeError:
        raise PermanentError("message contains text that is not valid Unicode (a lone surrogate)") from None
    except RecursionError:
        raise PermanentError("message body is JSON nested too deeply to read") from None
    except ValueError as error:  # JSONDecodeError, and integers past Python's digit limit
        reason = (
            "message body is not JSON"
            if isinstance(error, json.JSONDecodeError)
            else f"unreadable JSON: {error}"
        )
        raise PermanentError(reason[:300]) from None
    except TypeError:
        raise PermanentError("message body is not JSON") from None


def parse_intake_message(body: str) -> list[IntakeObject]:
    """An intake queue message: an S3 notification, S3's test event, or an upload request.

    Returns no objects for messages that carry no document (the test event, deletions).
    """
    message = load_json(body)
    if isinstance(message, dict) and message.get("Event") == "s3:TestEvent":
        return []
    if isinstance(message, dict) and "Records" in message:
        notification = validate(message, S3_NOTIFICATION_SCHEMA)
        return [
            _object_from_s3_record(record)
            for record in notification["Records"]
            if record["eventName"].startswith("ObjectCreated:")
        ]
    request = validate(message, UPLOAD_REQUEST_SCHEMA)
    target = target_of(request)
    return [
        IntakeObject(
            source=SourceObject(
                bucket=request["bucket"],
                key=check_key(request["key"]),
                version_id=request.get("version_id"),
                etag=request.get("etag"),
            ),
            target=target,
            description=request.get("description"),
            newer_version_wins=request["newer_version_wins"],
        )
    ]


def _object_from_s3_record(record: dict[str, Any]) -> IntakeObject:
    s3_object = record["s3"]["object"]
    return IntakeObject(
        source=SourceObject(
            bucket=record["s3"]["bucket"]["name"],
            # S3 notifications URL-encode keys ("a b+c.pdf" arrives as "a+b%2Bc.pdf").
            key=check_key(unquote_plus(s3_object["key"])),
            version_id=s3_object.get("versionId") or None,
            etag=s3_object.get("eTag") or None,
        ),
        size=s3_object.get("size"),
    )


def parse_association_message(body: str) -> AssociationRequest:
    message = validate(load_json(body), ASSOCIATION_REQUEST_SCHEMA)
    upload = upload_of(message)
    assert upload is not None  # the schema requires url or telnyx_document_id
    source = message.get("source")
    return AssociationRequest(
        target=target_of(message),
        description=message["description"],
        upload=upload,
        source=SourceObject(**source) if source else None,
    )


@dataclass(frozen=True)
class Claim:
    """What an unreadable association message says about itself, unvalidated: enough to find
    the document it names in the ledger, never enough to act on by itself."""

    source: SourceObject
    target_fields: dict[str, str]
    upload_reference: str


def claim_of(body: str) -> Claim | None:
    try:
        message = json.loads(body)
        source = message["source"]
        upload = upload_of({k: message.get(k) for k in ("url", "telnyx_document_id")})
        if upload is None:
            return None
        claim = Claim(
            source=SourceObject(
                bucket=str(source["bucket"]),
                key=str(source["key"]),
                version_id=source.get("version_id"),
                etag=source.get("etag"),
            ),
            target_fields={name: str(message[name]) for name in TARGET_FIELDS if name in message},
            upload_reference=upload.reference,
        )
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None
    return claim

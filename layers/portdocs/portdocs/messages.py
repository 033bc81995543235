"""The message shapes portdocs consumes and produces: parse, validate against the published
JSON Schemas (`portdocs/schemas/`), serialise."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import unquote_plus

import fastjsonschema

from portdocs.documents import DocumentType, DraftTarget, SourceObject
from portdocs.errors import PermanentError

UPLOAD_REQUEST_SCHEMA = "upload-request.schema.json"
ASSOCIATION_REQUEST_SCHEMA = "association-request.schema.json"


@dataclass(frozen=True)
class IntakeObject:
    """One intake object to upload: from an S3 notification or from an upload request message.

    An S3 notification pins the exact version and carries no target (the key layout gives it);
    an upload request names the target and leaves the version to be resolved.
    """

    source: SourceObject
    size: int | None = None
    target: DraftTarget | None = None
    description: str | None = None


@dataclass(frozen=True)
class AssociationRequest:
    target: DraftTarget
    description: str
    url: str
    source: SourceObject | None = None

    def to_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "draft_port_request_id": self.target.draft_port_request_id,
            "draft_sub_request_id": self.target.draft_sub_request_id,
            "document_type": str(self.target.document_type),
            "description": self.description,
            "url": self.url,
        }
        if self.source:
            message["source"] = self.source.as_message()
        return message


@cache
def _validator(schema_name: str) -> Any:
    schema = json.loads(resources.files("portdocs").joinpath("schemas", schema_name).read_text())
    return fastjsonschema.compile(schema)


def validate(message: Any, schema_name: str) -> dict[str, Any]:
    """Validates against a published schema; returns the message with schema defaults filled in."""
    try:
        return _validator(schema_name)(message)
    except fastjsonschema.JsonSchemaValueException as error:
        raise PermanentError(f"message does not match {schema_name}: {error.message}") from None


def _load_json(body: str) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, TypeError):
        raise PermanentError("message body is not JSON") from None


def parse_intake_message(body: str) -> list[IntakeObject]:
    """An intake queue message: an S3 notification, S3's test event, or an upload request.

    Returns no objects for messages that carry no document (the test event, deletions).
    """
    message = _load_json(body)
    if isinstance(message, dict) and message.get("Event") == "s3:TestEvent":
        return []
    if isinstance(message, dict) and "Records" in message:
        return [
            _object_from_s3_record(record)
            for record in message["Records"]
            if str(record.get("eventName", "")).startswith("ObjectCreated:")
        ]
    request = validate(message, UPLOAD_REQUEST_SCHEMA)
    target = DraftTarget(
        request["draft_port_request_id"],
        request["draft_sub_request_id"],
        DocumentType.parse(request["document_type"]),
    )
    return [
        IntakeObject(
            source=SourceObject(bucket=request["bucket"], key=request["key"]),
            target=target,
            description=request.get("description"),
        )
    ]


def _object_from_s3_record(record: dict[str, Any]) -> IntakeObject:
    try:
        s3 = record["s3"]
        s3_object = s3["object"]
        return IntakeObject(
            source=SourceObject(
                bucket=s3["bucket"]["name"],
                # S3 notifications URL-encode keys ("a b+c.pdf" arrives as "a+b%2Bc.pdf").
                key=unquote_plus(s3_object["key"]),
                version_id=s3_object.get("versionId") or None,
                etag=s3_object.get("eTag") or None,
            ),
            size=int(s3_object.get("size", 0)),
        )
    except (KeyError, TypeError, ValueError):
        raise PermanentError("S3 notification record is malformed") from None


def parse_association_message(body: str) -> AssociationRequest:
    message = validate(_load_json(body), ASSOCIATION_REQUEST_SCHEMA)
    target = DraftTarget(
        message["draft_port_request_id"],
        message["draft_sub_request_id"],
        DocumentType.parse(message["document_type"]),
    )
    source = message.get("source")
    return AssociationRequest(
        target=target,
        description=message["description"],
        url=message["url"],
        source=SourceObject(**source) if source else None,
    )

"""The message that puts a ledger document through the pipeline again, repeating its last step:
the association when the file is on Telnyx already (the ledger vouches for the source), else the
upload, pinned to its version. One definition for `portdocs retry` (a person) and the sweeper
(a schedule)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from portdocs.shapes import ASSOCIATION_REQUEST_SCHEMA, UPLOAD_REQUEST_SCHEMA, validate


class Queue(StrEnum):
    INTAKE = "intake"
    ASSOCIATION = "association"


@dataclass(frozen=True)
class Resend:
    queue: Queue
    body: dict[str, Any]


def resend_of(item: dict[str, Any], pin_version: bool = True) -> Resend | None:
    """None when the item names no document to send (a malformed message's row). Raises
    PermanentError if what the ledger recorded no longer fits the published schemas.

    `pin_version`: an upload names the exact version (or ETag), which makes it pinned on purpose:
    a newer version no longer supersedes it. Right for a person's retry; the sweeper pins only
    what was pinned already, so that the latest version still wins."""
    if "draft_sub_request_id" not in item:
        return None
    target_fields = {k: item[k] for k in ("draft_port_request_id", "draft_sub_request_id", "document_type")}
    source = item.get("source")
    if item.get("location_url"):
        message: dict[str, Any] = {
            **target_fields,
            "description": item.get("description", ""),
            "url": item["location_url"],
        }
        if source:
            message["source"] = source
        return Resend(Queue.ASSOCIATION, validate(message, ASSOCIATION_REQUEST_SCHEMA))
    if not source:
        return None
    request = {"bucket": source["bucket"], "key": source["key"], **target_fields}
    if pin_version:
        request.update({name: source[name] for name in ("version_id", "etag") if source.get(name)})
    if item.get("description"):
        request["description"] = item["description"]
    return Resend(Queue.INTAKE, validate(request, UPLOAD_REQUEST_SCHEMA))

"""The one definition of every message shape and limit: the published JSON Schemas in
`portdocs/schemas/`. The code reads its limits (ids, description and URL lengths) from them
instead of repeating them, so a schema and the code that checks the same rule cannot disagree.

Validators are compiled on first use (fastjsonschema turns a schema into Python code), so a cold
start pays only for the shapes its first message needs.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema

from portdocs.errors import PermanentError

UPLOAD_REQUEST_SCHEMA = "upload-request.schema.json"
ASSOCIATION_REQUEST_SCHEMA = "association-request.schema.json"
S3_NOTIFICATION_SCHEMA = "s3-notification.schema.json"
DOCUMENT_EVENT_SCHEMA = "document-event.schema.json"
PORTING_NOTIFICATION_SCHEMA = "porting-notification.schema.json"
PORTING_ORDER_EVENT_SCHEMA = "porting-order-event.schema.json"


@cache
def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(resources.files("portdocs").joinpath("schemas", name).read_text())
    return loaded


@cache
def _compiled(name: str, *path: str) -> Callable[[Any], Any]:
    part: Any = schema(name)
    for step in path:
        part = part[step]
    # fastjsonschema rewrites the $refs of the schema it is given: compile a copy.
    return fastjsonschema.compile(copy.deepcopy(part))


def validate(message: Any, schema_name: str) -> dict[str, Any]:
    """Validates against a published schema; returns the message with schema defaults filled in."""
    try:
        validated: dict[str, Any] = _compiled(schema_name)(message)
    except fastjsonschema.JsonSchemaValueException as error:
        said = error.message
        if error.rule == "oneOf" and error.path == ["data"]:
            # "must be valid exactly by one definition" says nothing to a person: name the targets.
            said = "it must name exactly one target: " + " or ".join(
                o["title"] for o in schema(schema_name)["oneOf"]
            )
        raise PermanentError(f"message does not match {schema_name}: {said}") from None
    return validated


def is_valid_id(value: object) -> bool:
    """A Telnyx id as the message schemas define it (fastjsonschema reads `$` as end of string,
    so "id\\n" is refused here exactly as in a message)."""
    try:
        _compiled(ASSOCIATION_REQUEST_SCHEMA, "definitions", "id")(value)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


def _property(name: str) -> dict[str, Any]:
    found: dict[str, Any] = schema(ASSOCIATION_REQUEST_SCHEMA)["properties"][name]
    return found


def description_max_length() -> int:
    return int(_property("description")["maxLength"])


def url_max_length() -> int:
    return int(_property("url")["maxLength"])


def document_types() -> tuple[str, ...]:
    return tuple(_property("document_type")["enum"])


def shorten_description(text: str) -> str:
    """A description longer than the schema allows is cut, not fatal: it is a courtesy to the
    porting agent reading it, and the document matters more than its caption."""
    limit = description_max_length()
    return text if len(text) <= limit else text[: limit - 1] + "…"

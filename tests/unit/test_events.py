from __future__ import annotations

import json

from portdocs.documents import DocumentType, DraftTarget, SourceObject, State, document_id
from portdocs.events import DETAIL_TYPES, DocumentChange
from portdocs.urls import without_url_paths

LOCATION = "https://files-service-prod.s3.amazonaws.com/direct-uploads%2F87a1e591-c54b-4f1c%2FLOA.pdf"


def test_the_longest_document_id_still_makes_a_valid_event():
    source = SourceObject("b" * 63, "k" * 1024, version_id="v" * 1024)  # digested beyond 1,024 bytes
    target = DraftTarget("p" * 128, "s" * 128, DocumentType.INVOICE)
    near_limit = SourceObject("b" * 3, "k" * (1024 - len("s3://bbb/#v")), version_id="v")
    for each in (source, near_limit):
        change = DocumentChange(document_id(each, target), State.REJECTED, target, each, reason="too big")
        assert change.detail()["document_id"] == document_id(each, target)


def test_every_state_a_document_can_end_in_has_a_detail_type():
    assert set(DETAIL_TYPES) == {
        State.ASSOCIATED,
        State.REJECTED,
        State.SUPERSEDED,
        State.WITHDRAWN,
        State.FAILED,
    }


def test_a_reason_never_carries_a_url_path():
    reason = without_url_paths(
        f"Telnyx refused it: 422 url {LOCATION} is not valid; see https://example.com/docs?x=1"
    )
    assert "direct-uploads" not in reason and "docs?x" not in reason
    assert "https://files-service-prod.s3.amazonaws.com/…" in reason and "https://example.com/…" in reason
    change = DocumentChange("doc-1", State.REJECTED, reason=reason)
    assert "direct-uploads" not in json.dumps(change.detail())

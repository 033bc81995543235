"""A ledger read is a typed entry, whatever the item holds; the CLI's own reads keep botocore's
errors for it to name."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from portdocs.documents import DocumentType, DraftTarget, SourceObject, State
from portdocs.ledger import Ledger
from portdocs.resend import resend_of
from portdocs_sandbox import cli
from portdocs_sandbox.sandbox import SandboxState
from portdocs_sandbox.stack import Stack, provision


@pytest.fixture
def table() -> Iterator[Any]:
    with mock_aws():
        stack: Stack = provision(stack_name="entries")
        yield boto3.resource("dynamodb").Table(stack.outputs["DocumentsTableName"])


def test_an_item_naming_a_target_portdocs_cannot_read_is_still_found_with_no_target(table: Any):
    # Hand-edited: a sub-request without its port request, a porting order that is no valid id.
    table.put_item(Item={"document_id": "half", "state": "received", "draft_sub_request_id": "sub-1"})
    table.put_item(
        Item={"document_id": "bad", "state": "uploaded", "porting_order_id": "../x", "document_type": "loa"}
    )
    ledger = Ledger(table)

    for document_id, state in (("half", State.RECEIVED), ("bad", State.UPLOADED)):
        entry = ledger.find(document_id)
        assert entry is not None and (entry.state, entry.target) == (state, None)
        assert resend_of(entry) is None  # nothing to send again: a person looks (the sweeper leaves it)
    assert ledger.find("absent") is None


def test_every_field_callers_read_comes_back_typed(table: Any):
    ledger = Ledger(table)
    target = DraftTarget("prq-1", "sub-1", DocumentType.LOA)
    ledger.open("doc-1", target, SourceObject("b", "k", "v"), "Signed LOA")
    ledger.mark_failed("doc-1", "transient: Telnyx answered 503")
    table.update_item(
        Key={"document_id": "doc-1"},
        UpdateExpression="SET sweeps = :two",
        ExpressionAttributeValues={":two": 2},
    )

    entry = ledger.get("doc-1")

    assert (entry.target, entry.source, entry.description) == (
        target,
        SourceObject("b", "k", "v"),
        "Signed LOA",
    )
    assert (entry.last_error, entry.sweeps) == ("transient: Telnyx answered 503", 2)
    assert entry.created_at and entry.updated_at >= entry.created_at


def test_a_retry_against_a_sandbox_that_is_gone_says_so_instead_of_a_traceback(tmp_path: Path, capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{probe.getsockname()[1]}"
    state = SandboxState(gone, "us-east-1", {"DocumentsTableName": "t"}, gone, gone, 1, ("application/pdf",))
    state.write(tmp_path / "sandbox.json")

    code = cli.main(["retry", "doc-1", "--state-file", str(tmp_path / "sandbox.json")])

    assert code == 1
    assert "cannot reach" in capsys.readouterr().err

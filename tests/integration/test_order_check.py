"""The uploader asks Telnyx about a porting order before it uploads anything for it (through both
handlers under moto, against the emulator over real HTTP): a document for an order that does not
exist, or takes no more documents, is rejected with that reason and nothing reaches the documents
service; one read of an order answers for the documents that follow it."""

from __future__ import annotations

import hashlib

import pytest

from portdocs.errors import ConfigurationError, PermanentError
from portdocs.order_check import ANSWER_SECONDS, OrderCheck, refusal_of
from portdocs.retrying import Deadline
from portdocs.telnyx_credentials import StaticCredentials, TelnyxCredentials
from portdocs.telnyx_http import TelnyxHttp
from portdocs.telnyx_porting import PortingApi
from portdocs_sandbox.telnyx_emulator import DEFAULT_API_KEY, Fault, TelnyxEmulator
from tests.files import pdf
from tests.support import PORTING_ORDER, UNKNOWN_ORDER, Pipeline

SECOND_ORDER = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


def key(order: str, document_type: str, file_name: str) -> str:
    return f"porting-orders/{order}/{document_type}/{file_name}"


def order_reads(emulator: TelnyxEmulator) -> int:
    return len(emulator.calls("porting_order"))


def document_uploads(emulator: TelnyxEmulator) -> int:
    return len([call for call in emulator.calls("documents") if call["method"] == "POST"])


@pytest.mark.parametrize("status", ["cancelled", "cancel-pending", "ported"])
def test_a_document_for_a_closed_order_is_rejected_before_anything_is_uploaded(
    pipeline: Pipeline, status: str
):
    pipeline.emulator.set_order_status(PORTING_ORDER, status)
    pipeline.drop(key(PORTING_ORDER, "loa", "loa.pdf"), pdf("LOA"))

    pipeline.runtime.drain()

    (entry,) = pipeline.ledger().values()
    assert entry["state"] == "rejected"
    assert entry["reason"] == (
        f"porting order {PORTING_ORDER} is {status} on Telnyx: it takes no more documents"
    )
    assert document_uploads(pipeline.emulator) == 0
    assert pipeline.emulator.porting_order(PORTING_ORDER)["documents"]["loa"] is None


@pytest.mark.parametrize("status", ["draft", "in-process", "submitted", "exception", "foc-date-confirmed"])
def test_a_document_for_an_order_still_worked_on_is_attached(pipeline: Pipeline, status: str):
    pipeline.emulator.set_order_status(PORTING_ORDER, status)
    body = pdf("invoice")
    pipeline.drop(key(PORTING_ORDER, "invoice", "invoice.pdf"), body)

    pipeline.runtime.drain()

    (entry,) = pipeline.ledger().values()
    assert entry["state"] == "associated"
    # The bytes as received, by which `portdocs bulk` knows a row was sent before.
    assert entry["received_sha256"] == hashlib.sha256(body).hexdigest()
    assert (
        pipeline.emulator.porting_order(PORTING_ORDER)["documents"]["invoice"] == entry["telnyx_document_id"]
    )


def test_a_document_for_an_order_telnyx_does_not_know_is_rejected_as_such(pipeline: Pipeline):
    pipeline.drop(key(UNKNOWN_ORDER, "loa", "loa.pdf"), pdf("LOA"))

    pipeline.runtime.drain()

    (entry,) = pipeline.ledger().values()
    assert entry["state"] == "rejected"
    assert entry["reason"].startswith(f"Telnyx has no porting order {UNKNOWN_ORDER} for this account (")
    assert "404" in entry["reason"] and entry["reason"].endswith("check the id")
    assert document_uploads(pipeline.emulator) == 0


def test_one_read_of_an_order_answers_for_the_documents_that_follow(pipeline: Pipeline):
    pipeline.emulator.seed_porting_order(SECOND_ORDER)
    for order in (PORTING_ORDER, SECOND_ORDER):
        for number in range(4):
            pipeline.drop(key(order, "other", f"page-{number}.pdf"), pdf(f"{order} {number}"))
    pipeline.drop(key(UNKNOWN_ORDER, "other", "a.pdf"), pdf("a"))
    pipeline.drop(key(UNKNOWN_ORDER, "other", "b.pdf"), pdf("b"))

    pipeline.runtime.drain()

    states = sorted(entry["state"] for entry in pipeline.ledger().values())
    assert states == ["associated"] * 8 + ["rejected"] * 2
    # In-process, every batch runs in the one execution environment: an order read once; one that
    # does not exist is read for each document (it may be being created), never remembered.
    assert order_reads(pipeline.emulator) == 2 + 2
    assert document_uploads(pipeline.emulator) == 8


def test_a_failed_read_of_the_order_is_retried_and_not_remembered(pipeline: Pipeline):
    pipeline.emulator.inject(Fault("porting_order", status=503, times=1))
    pipeline.drop(key(PORTING_ORDER, "loa", "loa.pdf"), pdf("LOA"))

    pipeline.runtime.drain()

    (entry,) = pipeline.ledger().values()
    assert entry["state"] == "associated"
    assert order_reads(pipeline.emulator) == 2


def test_an_order_closed_after_its_answer_expired_is_seen(emulator: TelnyxEmulator):
    emulator.seed_porting_order(PORTING_ORDER)
    now = [1000.0]
    check = OrderCheck(
        PortingApi(
            TelnyxHttp(emulator.api_url, StaticCredentials(TelnyxCredentials(api_key=DEFAULT_API_KEY)))
        ),
        clock=lambda: now[0],
    )
    deadline = Deadline.from_context(None)
    check.check(PORTING_ORDER, deadline)
    emulator.set_order_status(PORTING_ORDER, "cancelled")

    now[0] += ANSWER_SECONDS - 1
    check.check(PORTING_ORDER, deadline)  # still the answer read a minute ago
    now[0] += 2
    with pytest.raises(PermanentError, match="is cancelled on Telnyx"):
        check.check(PORTING_ORDER, deadline)
    assert order_reads(emulator) == 2


def checker(emulator: TelnyxEmulator, base_url: str | None = None) -> OrderCheck:
    credentials = StaticCredentials(TelnyxCredentials(api_key=DEFAULT_API_KEY))
    return OrderCheck(PortingApi(TelnyxHttp(base_url or emulator.api_url, credentials)))


@pytest.mark.parametrize("wrong", ["/v2", "/wrong"])
def test_a_wrong_base_url_is_a_configuration_fault_not_an_unknown_order(emulator: TelnyxEmulator, wrong: str):
    emulator.seed_porting_order(PORTING_ORDER)

    with pytest.raises(ConfigurationError, match="check TELNYX_API_BASE_URL"):
        checker(emulator, emulator.api_url + wrong).check(PORTING_ORDER, Deadline.from_context(None))


def test_an_order_created_just_after_a_refusal_is_taken_at_once(emulator: TelnyxEmulator):
    check, deadline = checker(emulator), Deadline.from_context(None)
    assert "Telnyx has no porting order" in str(check.refusal(UNKNOWN_ORDER, deadline))

    emulator.seed_porting_order(UNKNOWN_ORDER)

    assert check.refusal(UNKNOWN_ORDER, deadline) is None


@pytest.mark.parametrize(
    ("status", "refused"),
    [
        ({"value": "cancelled", "details": []}, True),
        ("ported", True),  # a plain string, not the documented object: still read
        ({"value": ["cancelled"]}, False),
        ({"value": None}, False),
        (None, False),
        ({"value": "paused-by-carrier"}, False),  # a status Telnyx adds later: Telnyx decides
    ],
)
def test_a_status_in_an_odd_shape_is_read_where_it_can_be_and_never_crashes(status, refused: bool):
    assert (refusal_of(PORTING_ORDER, {"id": PORTING_ORDER, "status": status}) is not None) is refused

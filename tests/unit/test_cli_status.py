from __future__ import annotations

from rich.console import Console

from portdocs.documents import DocumentType, DraftTarget, PortingOrderTarget, SourceObject, State
from portdocs.ledger import LedgerEntry
from portdocs_sandbox.cli import status_table


def rendered(entries: list[LedgerEntry]) -> str:
    console = Console(record=True, width=200)
    console.print(status_table(entries))
    return console.export_text()


def test_the_status_table_asks_a_person_to_check_what_may_be_on_telnyx_twice():
    text = rendered(
        [
            LedgerEntry("a", State.ASSOCIATED, possible_duplicate=True, telnyx_document_id="t1"),
            LedgerEntry("b", State.SUPERSEDED, possibly_attached=True, reason="a newer version"),
            LedgerEntry("c", State.ASSOCIATED, telnyx_document_id="t2"),
        ]
    )
    lines = {line.split("│")[1].strip(): line for line in text.splitlines() if line.startswith("│")}
    assert "check: possible duplicate" in lines["a"]
    assert "superseded" in lines["b"] and "check: possibly attached" in lines["b"]
    assert "check" not in lines["c"]


def test_the_status_table_names_the_file_its_target_and_what_went_wrong():
    order = PortingOrderTarget("7e6d5c4b-3a2f-4e1d-8c0b-9a8f7e6d5c4b", DocumentType.INVOICE)
    source = SourceObject("bucket", "porting-orders/7e6d5c4b-3a2f-4e1d-8c0b-9a8f7e6d5c4b/invoice/bill.pdf")
    text = rendered(
        [LedgerEntry("d", State.FAILED, target=order, source=source, last_error="transient: 503")]
    )
    (line,) = (line for line in text.splitlines() if line.startswith("│ bill.pdf"))
    assert "porting order 7e6d5c4b…" in line and "invoice" in line and "transient: 503" in line


def test_the_status_table_shows_telnyxs_review_of_each_attached_porting_order_document():
    order = PortingOrderTarget("7e6d5c4b-3a2f-4e1d-8c0b-9a8f7e6d5c4b", DocumentType.LOA)
    draft = DraftTarget(
        "3f9a8c2e-0b1d-4e5f-9a6b-7c8d9e0f1a2b", "8d7c6b5a-4e3f-4a1b-9c2d-1e0f9a8b7c6d", DocumentType.LOA
    )
    text = rendered(
        [
            LedgerEntry(
                "denied", State.ASSOCIATED, target=order, review_status="denied", review_reason="[b]x[/b]"
            ),
            LedgerEntry("unread", State.ASSOCIATED, target=order),
            LedgerEntry("draft", State.ASSOCIATED, target=draft),
            LedgerEntry("refused", State.REJECTED, target=order, reason="not a PDF"),
        ]
    )
    lines = {
        line.split("│")[1].strip(): line.split("│")[5].strip()
        for line in text.splitlines()
        if line.startswith("│")
    }
    assert lines["denied"] == "denied ([b]x[/b])"  # Telnyx's reason, shown as written
    assert lines["unread"] == "pending"
    assert lines["draft"] == "" and lines["refused"] == ""


def test_the_status_table_says_what_a_converted_file_was_and_became():
    order = PortingOrderTarget("7e6d5c4b-3a2f-4e1d-8c0b-9a8f7e6d5c4b", DocumentType.LOA)
    text = rendered(
        [
            LedgerEntry(
                "fax",
                State.ASSOCIATED,
                target=order,
                content_type="application/pdf",
                converted_from="image/tiff",
            ),
            LedgerEntry("pdf", State.ASSOCIATED, target=order, content_type="application/pdf"),
        ]
    )
    lines = {line.split("│")[1].strip(): line for line in text.splitlines() if line.startswith("│")}
    assert "loa (TIFF → PDF)" in lines["fax"]
    assert "→" not in lines["pdf"] and "loa" in lines["pdf"]

from __future__ import annotations

from rich.console import Console

from portdocs.documents import DocumentType, PortingOrderTarget, SourceObject, State
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

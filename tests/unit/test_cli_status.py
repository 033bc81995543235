from __future__ import annotations

from rich.console import Console

from portdocs_sandbox.cli import status_table


def rendered(rows: list[dict[str, object]]) -> str:
    console = Console(record=True, width=200)
    console.print(status_table(rows))
    return console.export_text()


def test_the_status_table_asks_a_person_to_check_what_may_be_on_telnyx_twice():
    text = rendered(
        [
            {
                "document_id": "a",
                "state": "associated",
                "possible_duplicate": True,
                "telnyx_document_id": "t1",
            },
            {
                "document_id": "b",
                "state": "superseded",
                "possibly_attached": True,
                "reason": "a newer version",
            },
            {"document_id": "c", "state": "associated", "telnyx_document_id": "t2"},
        ]
    )
    lines = {line.split("│")[1].strip(): line for line in text.splitlines() if line.startswith("│")}
    assert "check: possible duplicate" in lines["a"]
    assert "superseded" in lines["b"] and "check: possibly attached" in lines["b"]
    assert "check" not in lines["c"]

"""The emulator's v2 surface (issue #9's groundwork), over real HTTP: the documents service and
porting orders, as strict as Telnyx's reference describes them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from portdocs_sandbox.telnyx_emulator import EICAR, Fault, TelnyxEmulator
from tests.files import JPEG, pdf, pdf_of_streams
from tests.support import SAMPLES

API_KEY = "v2-key-0123456789"
ORDER = "9d7b3b8e-4e67-4837-9c44-d110cd2c82a1"
LOA = (SAMPLES / "Letter of Authorization.pdf").read_bytes()
TIFF = b"II*\x00" + bytes(64)


@pytest.fixture
def v2(emulator: TelnyxEmulator) -> Iterator[TelnyxEmulator]:
    emulator.credentials["api_key"] = API_KEY
    emulator.seed_porting_order(ORDER)
    yield emulator


def call(
    emulator: TelnyxEmulator, method: str, path: str, key: str = API_KEY, **kwargs: Any
) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return requests.request(method, f"{emulator.api_url}/v2{path}", headers=headers, timeout=10, **kwargs)


def upload(emulator: TelnyxEmulator, content: bytes = LOA, name: str = "signed loa.pdf") -> requests.Response:
    return call(emulator, "POST", "/documents", files={"file": (name, content, "application/pdf")})


def test_v2_takes_a_bearer_api_key_only(v2: TelnyxEmulator):
    legacy = {"x-api-user": "portdocs@example.com", "x-api-token": "emulator-token"}
    answer = requests.post(
        f"{v2.api_url}/v2/documents", headers=legacy, files={"file": ("a.pdf", LOA)}, timeout=10
    )
    assert answer.status_code == 401
    assert upload(v2).status_code == 200
    assert call(v2, "GET", "/documents/x", key="wrong").status_code == 401


def test_an_uploaded_document_is_scanned_awaiting_review_and_named_as_telnyx_names_it(v2: TelnyxEmulator):
    document = upload(v2, name="signed loa").json()["data"]

    assert document["filename"] == "signedloa.pdf"  # spaces removed, extension added
    assert (document["status"], document["av_scan_status"]) == ("pending", "scanned")
    assert document["size"] == {"unit": "bytes", "amount": len(LOA)}
    assert call(v2, "GET", f"/documents/{document['id']}").json()["data"] == document


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (TIFF, "image/tiff is not an accepted file type"),
        (b"%PDF-1.4\n" + bytes(20 * 1024 * 1024), "exceeds 20 MB"),
        (b"%PDF-1.7\n%%EOF\n", "not a readable application/pdf"),
        (pdf(), "not a readable application/pdf: no pages"),
        (JPEG[: len(JPEG) // 2], "not a readable image/jpeg"),
    ],
    ids=["tiff", "over 20 MB", "a PDF that does not open", "a PDF without pages", "half a JPEG"],
)
def test_what_the_documents_service_refuses_is_refused(v2: TelnyxEmulator, content: bytes, detail: str):
    answer = upload(v2, content)
    assert answer.status_code == 422 and detail in answer.json()["errors"][0]["detail"]


def test_an_infected_file_is_denied_and_cannot_be_linked(v2: TelnyxEmulator):
    document = upload(v2, pdf_of_streams(EICAR)).json()["data"]
    assert (document["status"], document["av_scan_status"]) == ("denied", "infected")

    answer = call(v2, "PATCH", f"/porting_orders/{ORDER}", json={"documents": {"loa": document["id"]}})
    assert answer.status_code == 422 and answer.json()["errors"][0]["source"]["pointer"] == "/documents/loa"


def test_a_document_not_linked_within_30_minutes_is_gone_and_a_linked_one_stays(v2: TelnyxEmulator):
    unlinked, linked = (upload(v2).json()["data"]["id"] for _ in range(2))
    assert (
        call(v2, "PATCH", f"/porting_orders/{ORDER}", json={"documents": {"invoice": linked}}).status_code
        == 200
    )

    requests.post(f"{v2.api_url}/_emulator/clock", json={"advance_seconds": 30 * 60 + 1}, timeout=10)

    assert call(v2, "GET", f"/documents/{unlinked}").status_code == 404
    late = call(v2, "PATCH", f"/porting_orders/{ORDER}", json={"documents": {"loa": unlinked}})
    assert late.status_code == 422 and "30 minutes" in late.json()["errors"][0]["detail"]
    assert call(v2, "GET", f"/documents/{linked}").status_code == 200
    assert v2.porting_order(ORDER)["documents"] == {"loa": None, "invoice": linked}


def test_additional_documents_are_linked_listed_and_validated(v2: TelnyxEmulator):
    csr = upload(v2).json()["data"]["id"]
    path = f"/porting_orders/{ORDER}/additional_documents"

    created = call(
        v2, "POST", path, json={"additional_documents": [{"document_id": csr, "document_type": "csr"}]}
    )

    assert created.status_code == 201
    (record,) = created.json()["data"]
    assert (record["document_id"], record["document_type"], record["porting_order_id"]) == (csr, "csr", ORDER)
    assert call(v2, "GET", path).json()["data"] == [record]
    refused: dict[str, Any]
    for refused in (
        {"additional_documents": [{"document_id": csr, "document_type": "passport"}]},
        {"additional_documents": [{"document_id": "no-such-document", "document_type": "other"}]},
        {"additional_documents": [{"document_id": csr, "document_type": "other"}] * 101},
        {"additional_documents": []},
    ):
        assert call(v2, "POST", path, json=refused).status_code == 422


def test_unknown_orders_are_404_and_order_documents_take_loa_and_invoice_only(v2: TelnyxEmulator):
    document = upload(v2).json()["data"]["id"]
    assert (
        call(v2, "PATCH", "/porting_orders/unknown", json={"documents": {"loa": document}}).status_code == 404
    )
    assert call(v2, "GET", "/porting_orders/unknown/additional_documents").status_code == 404
    assert (
        call(v2, "PATCH", f"/porting_orders/{ORDER}", json={"documents": {"csr": document}}).status_code
        == 422
    )


def test_faults_are_injected_on_v2_endpoints_too(v2: TelnyxEmulator):
    v2.inject(Fault(endpoint="documents", status=503, retry_after="2"))
    refused = upload(v2)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "2"
    assert upload(v2).status_code == 200
    assert [c["status"] for c in v2.calls("documents")] == [503, 200]

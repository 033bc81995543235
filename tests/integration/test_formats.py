"""Documents Telnyx will accept: every file is checked before it is sent, and converted where its
target needs another format (docs/formats.md). Handlers under moto, the emulator over HTTP."""

from __future__ import annotations

import io
from typing import Any, cast

from PIL import Image
from pypdf import PdfReader

from tests.files import FAXED_LOA, PHONE_PHOTO, hostile_files, pdf, tiff_pages
from tests.support import PORT_REQUEST, PORTING_ORDER, SUB_REQUEST, Pipeline, only

ORDER_PREFIX = f"porting-orders/{PORTING_ORDER}"
DRAFT_PREFIX = f"{PORT_REQUEST}/{SUB_REQUEST}"


def test_a_faxed_multi_page_tiff_loa_is_linked_to_the_porting_order_as_one_pdf(pipeline: Pipeline):
    pipeline.drop(f"{ORDER_PREFIX}/loa/faxed LOA.tif", FAXED_LOA)

    pipeline.runtime.drain()

    stored = only(pipeline.emulator.v2_documents())
    assert stored["content_type"] == "application/pdf" and stored["filename"] == "faxedLOA.pdf"
    sent = pipeline.emulator.v2_document_bytes(stored["id"])
    pages = PdfReader(io.BytesIO(sent)).pages
    with Image.open(io.BytesIO(FAXED_LOA)) as fax:
        assert len(pages) == getattr(fax, "n_frames", 1) == 3
    # Wrapped, not re-encoded: each page keeps the fax's CCITT group 4 data.
    images = [cast(Any, page)["/Resources"]["/XObject"]["/Im0"] for page in pages]
    assert all(image["/Filter"] == ["/CCITTFaxDecode"] for image in images)
    assert pipeline.emulator.porting_order(PORTING_ORDER)["documents"]["loa"] == stored["id"]
    entry = only(list(pipeline.ledger().values()))
    assert entry["state"] == "associated"
    assert entry["content_type"] == "application/pdf" and entry["converted_from"] == "image/tiff"
    (event,) = pipeline.events()
    assert event["detail"]["converted_from"] == "image/tiff"
    assert event["detail"]["content_type"] == "application/pdf"


def test_a_heic_phone_photo_is_linked_as_an_upright_jpeg_without_its_metadata(pipeline: Pipeline):
    pipeline.drop(f"{ORDER_PREFIX}/other/IMG_0001.HEIC", PHONE_PHOTO)

    pipeline.runtime.drain()

    stored = only(pipeline.emulator.v2_documents())
    assert stored["content_type"] == "image/jpeg" and stored["filename"] == "IMG_0001.jpg"
    photo = Image.open(io.BytesIO(pipeline.emulator.v2_document_bytes(stored["id"])))
    assert photo.format == "JPEG" and photo.size == (1200, 900)  # landscape, as it was taken
    assert not photo.getexif()
    entry = only(list(pipeline.ledger().values()))
    assert entry["state"] == "associated" and entry["converted_from"] == "image/heic"


def test_a_draft_takes_a_tiff_as_it_is(pipeline: Pipeline):
    pipeline.drop(f"{DRAFT_PREFIX}/loa/fax.tif", FAXED_LOA)

    pipeline.runtime.drain()

    (form,) = pipeline.emulator.calls("upload_requests")
    assert form["json"] == {"content_type": "image/tiff"}
    entry = only(list(pipeline.ledger().values()))
    assert entry["state"] == "associated" and entry["content_type"] == "image/tiff"
    assert "converted_from" not in entry
    assert "converted_from" not in only(pipeline.events())["detail"]


def test_a_tiff_of_more_pages_than_portdocs_converts_is_rejected_before_any_upload(pipeline: Pipeline):
    pipeline.drop(f"{ORDER_PREFIX}/loa/long fax.tif", tiff_pages(101))

    pipeline.runtime.drain()

    entry = only(list(pipeline.ledger().values()))
    assert entry["state"] == "rejected" and "101 pages" in entry["reason"] and "split it" in entry["reason"]
    assert not pipeline.emulator.v2_documents()


def test_every_hostile_file_is_rejected_with_its_reason_and_none_breaks_the_batch(pipeline: Pipeline):
    files = hostile_files()
    for number, hostile in enumerate(files):
        pipeline.drop(f"{ORDER_PREFIX}/other/{number:02d}-{hostile.file_name}", hostile.body)
    pipeline.drop(f"{ORDER_PREFIX}/loa/loa.pdf", pdf("the one good file"))

    pipeline.runtime.drain()

    entries = {entry["source"]["key"].rsplit("/", 1)[1]: entry for entry in pipeline.ledger().values()}
    for number, hostile in enumerate(files):
        entry = entries[f"{number:02d}-{hostile.file_name}"]
        if hostile.reason is None:
            assert entry["state"] == "associated", hostile.name
        else:
            assert entry["state"] == "rejected", (hostile.name, entry)
            assert hostile.reason in entry["reason"], (hostile.name, entry["reason"])
    assert entries["loa.pdf"]["state"] == "associated"
    assert pipeline.receive("IntakeDeadLetterQueueUrl") == []
    # Only what was taken reached Telnyx.
    taken = sum(hostile.reason is None for hostile in files) + 1
    assert len(pipeline.emulator.v2_documents()) == taken

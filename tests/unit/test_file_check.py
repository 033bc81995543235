"""The pre-flight check's worker process and the one table of formats: what the Lambda does when a
file makes a reader loop, crash or run out of memory, and when the worker cannot start at all.
The misbehaving readers are real processes: a stand-in library, first on the worker's path."""

from __future__ import annotations

import io
import re
import tempfile
import time
from pathlib import Path

import pytest
from PIL import Image

from portdocs import file_check
from portdocs.documents import DocumentType, DraftTarget, PortingOrderTarget, sniff_content_type
from portdocs.errors import ConfigurationError, DeferredError, PermanentError
from portdocs.file_check import CheckedFile, check_file, check_for_target
from portdocs.file_check_worker import CHECKS, CONVERSIONS
from portdocs.flows.porting_order import DOCUMENTS_SERVICE_CONTENT_TYPES, PortingOrderFlow
from portdocs.formats import CONTENT_TYPES, CONVERTED, FORMATS, Handling, converted_name, format_of
from portdocs.retrying import Deadline
from tests.files import FAXED_LOA, LOA_PDF, Hostile, hostile_files

ORDER = PortingOrderTarget("6f5e4d3c-2b1a-4f0e-9d8c-7b6a5f4e3d2c", DocumentType.LOA)
DRAFT = DraftTarget(
    "3f9a8c2e-0b1d-4e5f-9a6b-7c8d9e0f1a2b", "8d7c6b5a-4e3f-4a1b-9c2d-1e0f9a8b7c6d", DocumentType.LOA
)


def ample() -> Deadline:
    return Deadline(time.monotonic() + 120)


def written(tmp_path: Path, body: bytes) -> Path:
    path = tmp_path / "original"
    path.write_bytes(body)
    return path


def check_a_pdf(tmp_path: Path) -> CheckedFile:
    """The sample LOA through the worker, as the uploader sends a PDF to a porting order."""
    return check_file(
        written(tmp_path, LOA_PDF), tmp_path / "out", "loa.pdf", "application/pdf", Handling.AS_IS, ample()
    )


def stand_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, module: str, code: str) -> None:
    """A library of that name whose import runs `code`, found first by the worker."""
    folder = tmp_path / "stand-ins"
    (folder / module).mkdir(parents=True)
    (folder / module / "__init__.py").write_text(code)
    monkeypatch.syspath_prepend(str(folder))


def test_every_format_sent_to_a_porting_order_is_one_the_documents_service_takes():
    for format_ in FORMATS:
        handling = format_.handling(ORDER)
        sent = format_.content_type if handling is Handling.AS_IS else CONVERTED[handling][0]
        assert sent in DOCUMENTS_SERVICE_CONTENT_TYPES, format_


def test_the_worker_checks_every_format_and_makes_every_conversion_the_table_names():
    assert set(CHECKS) == {format_.content_type for format_ in FORMATS}
    for format_ in FORMATS:
        for handling in (format_.draft, format_.porting_order):
            assert handling is Handling.AS_IS or (format_.content_type, handling) in CONVERSIONS


def test_a_format_portdocs_does_not_take_is_named_with_what_it_takes():
    with pytest.raises(
        PermanentError, match="does not take image/gif files; it takes PDF, JPEG, PNG, TIFF, HEIC"
    ):
        format_of("image/gif")


@pytest.mark.parametrize(
    ("name", "handling", "expected"),
    [
        ("fax.tif", Handling.TO_PDF, "fax.pdf"),
        ("IMG_0001.HEIC", Handling.TO_JPEG, "IMG_0001.jpg"),
        ("scan", Handling.TO_PDF, "scan.pdf"),
        ("a.b.tiff", Handling.TO_PDF, "a.b.pdf"),
        ("Invoice v1.2", Handling.TO_PDF, "Invoice v1.2.pdf"),
        ("photo.HEIF", Handling.TO_JPEG, "photo.jpg"),
        (".tif", Handling.TO_PDF, ".tif.pdf"),
        ("loa.pdf", Handling.AS_IS, "loa.pdf"),
    ],
)
def test_a_converted_file_is_named_for_what_it_became(name, handling, expected):
    assert converted_name(name, handling) == expected


def test_a_draft_keeps_a_tiff_and_a_porting_order_gets_the_same_pages_as_a_pdf(tmp_path: Path):
    original = written(tmp_path, FAXED_LOA)

    kept = check_for_target(
        original, tmp_path / "out", "fax.tif", ("image/tiff",), DRAFT, lambda *_: None, ample()
    )
    converted = check_for_target(
        original, tmp_path / "out", "fax.tif", ("image/tiff",), ORDER, PortingOrderFlow.check_fits, ample()
    )

    assert (kept.path, kept.content_type, kept.converted_from, kept.pages) == (
        original,
        "image/tiff",
        None,
        3,
    )
    assert (converted.file_name, converted.content_type, converted.converted_from) == (
        "fax.pdf",
        "application/pdf",
        "image/tiff",
    )
    assert converted.size == converted.path.stat().st_size and converted.pages == 3


def read_by_a_worker(hostile: Hostile) -> bool:
    """Not refused before any worker, for its size or its sniffed type (those: test_formats.py)."""
    return bool(hostile.body) and sniff_content_type(hostile.body) in CONTENT_TYPES


@pytest.mark.parametrize("hostile", [h for h in hostile_files() if read_by_a_worker(h)], ids=lambda h: h.name)
def test_each_hostile_file_meets_its_documented_outcome_in_the_worker(tmp_path: Path, hostile: Hostile):
    content_type = str(sniff_content_type(hostile.body))
    path = written(tmp_path, hostile.body)
    handling = format_of(content_type).handling(ORDER)
    if hostile.reason is None:
        assert check_file(path, tmp_path / "out", hostile.file_name, content_type, handling, ample()).pages
        return
    with pytest.raises(PermanentError, match=re.escape(hostile.reason)):
        check_file(path, tmp_path / "out", hostile.file_name, content_type, handling, ample())


def test_a_reader_that_never_finishes_is_stopped_and_the_file_refused(monkeypatch, tmp_path: Path):
    stand_in(
        monkeypatch,
        tmp_path,
        "pypdf",
        "class PdfReader:\n    def __init__(self, *a, **k):\n        while True: pass\n",
    )
    monkeypatch.setattr(file_check, "CHECK_SECONDS", 1)

    started = time.monotonic()
    with pytest.raises(PermanentError, match="could not be read within 1 seconds"):
        check_a_pdf(tmp_path)
    assert time.monotonic() - started < 10


def test_a_check_cut_short_by_the_invocation_is_handed_back_not_refused(monkeypatch, tmp_path: Path):
    stand_in(
        monkeypatch,
        tmp_path,
        "pypdf",
        "class PdfReader:\n    def __init__(self, *a, **k):\n        while True: pass\n",
    )

    with pytest.raises(DeferredError):
        check_file(
            written(tmp_path, LOA_PDF),
            tmp_path / "out",
            "loa.pdf",
            "application/pdf",
            Handling.AS_IS,
            Deadline(time.monotonic() + 1),
        )


def test_a_reader_that_crashes_refuses_the_file_and_the_lambda_lives_on(monkeypatch, tmp_path: Path):
    stand_in(monkeypatch, tmp_path, "pypdf", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")

    with pytest.raises(PermanentError, match="crashed the reader of its type"):
        check_a_pdf(tmp_path)


def test_a_worker_that_cannot_start_keeps_the_document_for_redrive(monkeypatch, tmp_path: Path):
    stand_in(monkeypatch, tmp_path, "img2pdf", "raise ImportError('img2pdf is missing from the layer')\n")

    with pytest.raises(ConfigurationError, match="img2pdf is missing from the layer"):
        check_a_pdf(tmp_path)


def test_an_image_that_needs_more_memory_than_the_worker_has_is_refused(monkeypatch, tmp_path: Path):
    # 40 megapixels (under the limit on pixels) of RGB: 160 MB decoded, over a 128 MiB worker.
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
    picture = io.BytesIO()
    Image.new("RGB", (8000, 5000), "white").save(picture, "PNG")

    with pytest.raises(PermanentError, match="needs more memory to read than a document can"):
        check_file(
            written(tmp_path, picture.getvalue()),
            tmp_path / "out",
            "big.png",
            "image/png",
            Handling.AS_IS,
            ample(),
        )


def test_the_worker_gets_no_credential_from_the_lambdas_environment(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "canary-secret")
    monkeypatch.setenv("TELNYX_API_KEY", "canary-key")
    # A reader taken over by the file: what it can see of the environment, it says.
    stand_in(monkeypatch, tmp_path, "pypdf", "import os\nraise ImportError(' '.join(sorted(os.environ)))\n")

    with pytest.raises(ConfigurationError) as raised:
        check_a_pdf(tmp_path)

    seen = str(raised.value)
    assert "PYTHONPATH" in seen
    assert "AWS_SECRET_ACCESS_KEY" not in seen and "TELNYX_API_KEY" not in seen


def test_an_image_just_over_the_pixel_limit_is_refused_for_its_size_not_as_damaged(tmp_path: Path):
    picture = io.BytesIO()
    Image.new("1", (8000, 7600), 1).save(picture, "PNG")  # 60.8 megapixels: Pillow warns as it opens

    with pytest.raises(PermanentError, match="larger than portdocs' limit of 50 megapixels"):
        check_file(
            written(tmp_path, picture.getvalue()),
            tmp_path / "out",
            "a.png",
            "image/png",
            Handling.AS_IS,
            ample(),
        )


def test_a_conversion_too_big_for_the_documents_service_says_it_was_converted(tmp_path: Path):
    def at_most_1000_bytes(file_name: str, size: int, content_type: str) -> None:
        if size > 1000:
            raise PermanentError(f"the file is {size} bytes, over the limit of 1000 bytes")

    with pytest.raises(PermanentError, match=r"^converted to PDF for its target: the file is \d+ bytes"):
        check_for_target(
            written(tmp_path, FAXED_LOA),
            tmp_path / "out",
            "fax.tif",
            ("image/tiff",),
            ORDER,
            at_most_1000_bytes,
            ample(),
        )


def test_a_worker_killed_for_memory_refuses_the_file_saying_so(monkeypatch, tmp_path: Path):
    stand_in(monkeypatch, tmp_path, "pypdf", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")

    with pytest.raises(PermanentError, match="took more memory than the function has"):
        check_a_pdf(tmp_path)


def test_after_a_check_the_lambdas_own_environment_cannot_be_read_by_its_workers(tmp_path: Path):
    import ctypes

    check_a_pdf(tmp_path)

    # Not dumpable: /proc/<pid>/environ and mem belong to root, not to the (same) user of a worker.
    assert ctypes.CDLL(None).prctl(3, 0, 0, 0, 0) == 0  # PR_GET_DUMPABLE


def test_folders_an_invocation_killed_mid_check_left_are_cleared_at_a_cold_start(monkeypatch, tmp_path: Path):
    import os

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with file_check.local_folder() as current:
        stale = Path(tmp_path, f"{file_check.LOCAL_FOLDER_PREFIX}killed")
        (stale / "nested").mkdir(parents=True)
        (stale / "nested" / "original").write_bytes(b"x")
        old = time.time() - file_check.LEFTOVER_AFTER_SECONDS - 60
        os.utime(stale, (old, old))

        file_check.clear_leftovers()

        assert not stale.exists() and Path(current).is_dir()


def test_a_jpeg_coded_colour_scan_becomes_a_pdf_of_jpeg_pages_not_a_lossless_giant(tmp_path: Path):
    from typing import Any, cast

    from pypdf import PdfReader

    pages = [Image.new("RGB", (600, 800), colour) for colour in ("white", "lightyellow")]
    scan = io.BytesIO()
    pages[0].save(scan, "TIFF", compression="jpeg", save_all=True, append_images=pages[1:])

    converted = check_file(
        written(tmp_path, scan.getvalue()),
        tmp_path / "out",
        "scan.tif",
        "image/tiff",
        Handling.TO_PDF,
        ample(),
    )

    pdf_pages = PdfReader(converted.path).pages
    assert len(pdf_pages) == converted.pages == 2
    images = [cast(Any, page)["/Resources"]["/XObject"]["/Im0"] for page in pdf_pages]
    assert all(image["/Filter"] in ("/DCTDecode", ["/DCTDecode"]) for image in images)

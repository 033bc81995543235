from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest

from portdocs.documents import (
    DocumentType,
    DraftTarget,
    IntakeKey,
    SourceObject,
    State,
    check_content_type,
    check_size,
    document_id,
    is_folder_placeholder,
    sniff_content_type,
)
from portdocs.errors import PermanentError
from portdocs.intake import sanitise_tag_value
from portdocs.urls import check_url_allowed, redacted, without_url_paths

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
TIFF_LE = b"II*\x00\x08\x00\x00\x00"
TIFF_BE = b"MM\x00*\x00\x00\x00\x08"
ALLOWED = ("application/pdf", "image/jpeg", "image/png", "image/tiff")


@pytest.mark.parametrize("raw", ["LOA", "loa", " Invoice ", "CsR", "other"])
def test_document_type_is_case_insensitive(raw):
    assert DocumentType.parse(raw).value == raw.strip().lower()


def test_unknown_document_type_is_permanent_and_lists_the_choices():
    with pytest.raises(PermanentError, match=r"unknown document type 'bill'.*loa, csr, invoice, other"):
        DocumentType.parse("bill")


def test_intake_key_layout_is_parsed():
    parsed = IntakeKey.parse("prq-1/sub-1/INVOICE/October bill + fees é.pdf")
    assert parsed.target == DraftTarget("prq-1", "sub-1", DocumentType.INVOICE)
    assert parsed.file_name == "October bill + fees é.pdf"


@pytest.mark.parametrize(
    "key",
    ["prq-1/sub-1/loa.pdf", "prq-1/sub-1/loa/extra/file.pdf", "prq-1//loa/file.pdf", "prq-1/sub-1/loa/"],
)
def test_keys_outside_the_layout_are_rejected_with_the_expected_layout(key):
    with pytest.raises(PermanentError, match="does not follow the intake layout"):
        IntakeKey.parse(key)


@pytest.mark.parametrize("bad_id", ["..", "a/b", "a b", "", "x" * 129, "-leading"])
def test_ids_that_could_escape_the_url_path_are_refused(bad_id):
    with pytest.raises(PermanentError, match="not a valid id"):
        DraftTarget(bad_id, "sub-1", DocumentType.LOA)


def test_folder_placeholders_are_not_documents():
    assert is_folder_placeholder("prq-1/sub-1/loa/", 0)
    assert not is_folder_placeholder("prq-1/sub-1/loa/", 10)
    assert not is_folder_placeholder("prq-1/sub-1/loa/a.pdf", 0)


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    """The start of an ISO base media file: its file-type box."""
    body = major + bytes(4) + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (PDF, "application/pdf"),
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (TIFF_LE, "image/tiff"),
        (TIFF_BE, "image/tiff"),
        (ftyp(b"heic", b"mif1", b"heic"), "image/heic"),
        (ftyp(b"heix", b"mif1"), "image/heic"),  # 10-bit, as some Android phones write
        (ftyp(b"mif1", b"heic"), "image/heic"),
        (ftyp(b"mif1", b"avif"), "image/avif"),  # HEIF, but not HEVC: not a HEIC
        (ftyp(b"isom", b"mp41"), "video/mp4"),
    ],
)
def test_content_type_is_sniffed_from_the_bytes(head, expected):
    assert sniff_content_type(head + bytes(300)) == expected


def test_a_pdf_extension_on_a_zip_is_not_a_pdf():
    with pytest.raises(PermanentError, match="application/zip, which is not allowed"):
        check_content_type(b"PK\x03\x04" + bytes(300), ALLOWED)


def test_unrecognisable_bytes_are_rejected():
    with pytest.raises(PermanentError, match="could not be recognised"):
        check_content_type(b"hello, this is plain text", ALLOWED)


def test_allowed_types_are_configurable():
    with pytest.raises(PermanentError, match="image/png, which is not allowed; allowed: application/pdf"):
        check_content_type(PNG + bytes(300), ("application/pdf",))


def test_size_bounds():
    check_size(1, 10)
    check_size(10, 10)
    with pytest.raises(PermanentError, match="empty"):
        check_size(0, 10)
    with pytest.raises(PermanentError, match="11 bytes, over the limit of 10 bytes"):
        check_size(11, 10)


@pytest.mark.parametrize(
    "url",
    [
        "https://files-service-prod.s3.amazonaws.com/direct-uploads%2Fx%2Fa.pdf",
        "https://FILES-service-prod.s3.amazonaws.com:443/direct-uploads%2Fx%2Fa.pdf",
        "http://127.0.0.1:9000/bucket/key",
        "http://localhost:9000/bucket/key",
    ],
)
def test_allowed_urls(url):
    check_url_allowed(url, ("files-service-prod.s3.amazonaws.com", "127.0.0.1:9000", "localhost:9000"))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://files-service-prod.s3.amazonaws.com/a", "must use https"),
        ("https://evil.example.com/a", "not in ALLOWED_UPLOAD_HOSTS"),
        ("https://files-service-prod.s3.amazonaws.com.evil.com/a", "not in ALLOWED_UPLOAD_HOSTS"),
        ("https://files-service-prod.s3.amazonaws.com:8443/a", "not in ALLOWED_UPLOAD_HOSTS"),
        ("https://user:pw@files-service-prod.s3.amazonaws.com/a", "user credentials"),
        ("http://127.0.0.1:9001/bucket/key", "not in ALLOWED_UPLOAD_HOSTS"),
        ("ftp://files-service-prod.s3.amazonaws.com/a", "must use https"),
        ("not a url", "has no host"),
    ],
)
def test_refused_urls(url, reason):
    with pytest.raises(PermanentError, match=reason):
        check_url_allowed(url, ("files-service-prod.s3.amazonaws.com", "127.0.0.1:9000"))


def test_tag_values_are_mapped_onto_s3s_alphabet_and_length():
    value = sanitise_tag_value('file is "text/plain" (not allowed); é\n' + "x" * 300)
    assert value.startswith("file is _text/plain_ _not allowed__ __")
    assert len(value) == 256
    assert sanitise_tag_value("a-b_c.d:e/f@g+h=i j") == "a-b_c.d:e/f@g+h=i j"


def test_document_identity_prefers_version_then_etag():
    target = DraftTarget("prq-1", "sub-1", DocumentType.LOA)
    versioned = SourceObject("b", "k", version_id="v1", etag='"e1"')
    unversioned = SourceObject("b", "k", etag='"e1"')
    assert document_id(versioned, None) == "s3://b/k#v1"
    assert document_id(unversioned, None) == "s3://b/k#e1"
    assert document_id(versioned, target) == "s3://b/k#v1 -> prq-1/sub-1/loa"
    assert document_id(SourceObject("b", "k", version_id="v2"), target) != document_id(versioned, target)


def test_only_associated_rejected_superseded_and_withdrawn_are_terminal():
    assert {s for s in State if s.is_terminal} == {
        State.ASSOCIATED,
        State.REJECTED,
        State.SUPERSEDED,
        State.WITHDRAWN,
    }


UUID = "3f2a9c1e-7b4d-4e5f-9a6b-7c8d9e0f1a2b"
NAME = "Jöhn Doe+LOA (1).pdf"
LOCATION = f"https://files-service-prod.s3.amazonaws.com/direct-uploads/{UUID}/{quote_plus(NAME)}"
PATH = f"direct-uploads/{UUID}/{NAME}"


@pytest.mark.parametrize(
    "echo",
    [
        LOCATION,
        f"file {PATH} not found",
        PATH.replace(" ", "+"),
        quote(PATH),
        quote(PATH).replace("%2F", "/"),
        json.dumps(LOCATION).replace("/", "\\u002F"),
        LOCATION.replace("/", "&#x2F;"),
        quote(quote(LOCATION, safe=""), safe=""),
        f"document {UUID} is gone",
        f"id_{LOCATION}",
    ],
)
def test_a_server_echoing_the_files_url_in_any_form_echoes_nothing_of_it(echo):
    said = redacted(f"refused: {echo}.", LOCATION)
    assert UUID[:8] not in said and "Doe" not in said and said.startswith("refused: ")


def test_urls_it_was_not_sent_keep_their_host_in_any_form_and_short_secrets_are_no_secrets():
    assert without_url_paths("see x%3Dhttps%3A%2F%2Fh.example%2Fsecret") == "see x%3Dhttps://h.example/…"
    assert without_url_paths("bad url:\\nhttps://h.example/secret") == "bad url:\\nhttps://h.example/…"
    assert redacted("the loa was the one", LOCATION, "loa", "the") == "the loa was the one"

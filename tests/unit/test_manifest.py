"""Bulk manifests as porting teams and machines really write them, and as they go wrong: each case
with the outcome docs/bulk.md documents. A manifest-wide fault stops the run before anything is
read (ManifestError); a row's fault is that row's problem, with its number, and the other rows go
on."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from portdocs.documents import DocumentType, DraftTarget, PortingOrderTarget
from portdocs_sandbox.manifest import COLUMNS, MAX_ROWS, ManifestError, Problem, Row, read_manifest
from tests.support import PORT_REQUEST as REQUEST
from tests.support import PORTING_ORDER as ORDER
from tests.support import SAMPLES
from tests.support import SUB_REQUEST as SUB

HEADER = ",".join(COLUMNS)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The manifest's folder, with the files its rows name, and a file outside it."""
    inside = tmp_path / "onboarding"
    (inside / "orders").mkdir(parents=True)
    for name in ("loa.pdf", "invoice.pdf", "a, b.pdf"):
        (inside / "orders" / name).write_bytes(b"%PDF-1.4")
    (tmp_path / "secret.pdf").write_bytes(b"%PDF-1.4 not for Telnyx")
    return inside


def manifest(folder: Path, text: str | bytes, name: str = "manifest.csv") -> Path:
    path = folder / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def read(path: Path, files_anywhere: bool = False) -> tuple[list[Row], list[str]]:
    rows, problems = read_manifest(path, files_anywhere)
    return rows, [str(p) for p in problems]


def one_problem(folder: Path, line: str, files_anywhere: bool = False) -> str:
    rows, problems = read(manifest(folder, f"{HEADER}\n{line}\n"), files_anywhere)
    assert rows == []
    (problem,) = problems
    assert problem.startswith("row 2: ")
    return problem.removeprefix("row 2: ")


def test_a_spreadsheet_of_both_target_kinds_is_read_row_by_row(folder: Path):
    rows, problems = read(
        manifest(
            folder,
            f"{HEADER}\norders/loa.pdf,LOA,{ORDER},,,signed\norders/invoice.pdf,invoice,,{REQUEST},{SUB},\n",
        )
    )

    assert problems == []
    assert rows == [
        Row(2, rows[0].file, PortingOrderTarget(ORDER, DocumentType.LOA), "signed"),
        Row(3, rows[1].file, DraftTarget(REQUEST, SUB, DocumentType.INVOICE), None),
    ]
    assert rows[0].file.path == (folder / "orders" / "loa.pdf").resolve()


def test_excels_byte_order_mark_crlf_and_quoted_commas_are_read_as_excel_meant_them(folder: Path):
    text = f'{HEADER}\r\n"orders/a, b.pdf",other,{ORDER},,,"page 1, page 2"\r\n'
    rows, problems = read(manifest(folder, b"\xef\xbb\xbf" + text.encode()))

    assert problems == []
    (row,) = rows
    assert row.file.name == "a, b.pdf" and row.description == "page 1, page 2"


def test_column_names_are_read_whatever_their_case_and_spacing(folder: Path):
    rows, problems = read(manifest(folder, f" File ,TYPE,Porting_Order\norders/loa.pdf,loa,{ORDER}\n"))
    assert problems == [] and len(rows) == 1


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("file,porting_order", "missing column(s) type"),
        ("file,type,porting_order_id", "unknown column(s) 'porting_order_id'"),
        ("file,type,porting_order,notes", "unknown column(s) 'notes'"),
        ("file,type,type,porting_order", "column(s) named twice: type"),
    ],
)
def test_a_header_that_does_not_name_the_columns_stops_the_run(folder: Path, header: str, message: str):
    with pytest.raises(ManifestError, match=message.replace("(", r"\(").replace(")", r"\)")) as raised:
        read_manifest(manifest(folder, f"{header}\norders/loa.pdf,loa,{ORDER}\n"))
    assert "the columns are file, type, porting_order, port_request, sub_request, description" in str(
        raised.value
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "has no rows"),
        (HEADER.encode() + b"\n", "has no rows"),
        (HEADER.encode() + b"\n,,,,,\n\n", "has no rows"),
        (f"{HEADER}\norders/caf\xe9.pdf,loa,{ORDER},,,\n".encode("latin-1"), r"not UTF-8 \(line 2, byte"),
        (HEADER.encode("utf-16"), "UTF-16: save it as UTF-8"),
        (HEADER.encode() + b"\n\x00\x00", "NUL bytes"),
        (f'{HEADER}\n"orders/loa.pdf,loa,{ORDER}\n'.encode(), "not valid CSV"),
    ],
)
def test_a_manifest_that_is_not_readable_text_stops_the_run(folder: Path, content: bytes, message: str):
    with pytest.raises(ManifestError, match=message):
        read_manifest(manifest(folder, content))


def test_ten_thousand_rows_are_refused_before_any_file_is_looked_at(folder: Path):
    rows = "".join(f"orders/missing-{n}.pdf,loa,{ORDER},,,\n" for n in range(10_000))
    with pytest.raises(ManifestError, match=f"has 10000 rows; at most {MAX_ROWS}: split it"):
        read_manifest(manifest(folder, f"{HEADER}\n{rows}"))


def test_a_manifest_named_neither_csv_nor_jsonl_is_refused(folder: Path):
    with pytest.raises(ManifestError, match=r"name the manifest \.csv or \.jsonl"):
        read_manifest(manifest(folder, f"{HEADER}\n", name="manifest.xlsx"))


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            f"orders/loa.pdf,loa,{ORDER},{REQUEST},{SUB},",
            "names both a porting order and a draft port request",
        ),
        ("orders/loa.pdf,loa,,,,", "no target: give porting_order, or port_request and sub_request"),
        (f"orders/loa.pdf,loa,,{REQUEST},,", "a draft target takes both port_request and sub_request"),
        (f"orders/loa.pdf,contract,{ORDER},,,", "unknown document type 'contract': use one of loa, csr"),
        (f"orders/loa.pdf,,{ORDER},,,", "no type (loa, invoice, csr or other)"),
        (f",loa,{ORDER},,,", "no file"),
        (f"orders/loa.pdf,loa,{ORDER},,,signé", "the description must be printable ASCII on one line"),
        (f'orders/loa.pdf,loa,{ORDER},,,"line one\nline two"', "the description must be printable ASCII"),
        (f"orders/loa.pdf,loa,{ORDER},,,{'x' * 1025}", "the description is over 1024 characters"),
        (f"orders/loa.pdf,loa,{ORDER},,,,extra", "7 cells, but the header names 6"),
        (f"s3://scans/a.pdf,loa,{ORDER},,,", "s3://scans/a.pdf: an S3 object (--files-anywhere allows it)"),
        ("orders/loa.pdf,loa,not an id,,,", "porting_order_id"),
        (f"orders/nowhere.pdf,loa,{ORDER},,,", "orders/nowhere.pdf: no such file"),
        (f"orders,loa,{ORDER},,,", "orders: not a regular file"),
    ],
)
def test_a_row_that_cannot_be_sent_is_that_rows_problem(folder: Path, line: str, problem: str):
    assert problem in one_problem(folder, line)


@pytest.mark.parametrize(
    "url",
    [
        "s3://intake-bucket/",
        "s3:///key.pdf",
        "s3://bucket/a/..",
        "s3://bucket/x/.",
        "s3://key:secret@bucket/a.pdf",
    ],
)
def test_an_s3_url_that_names_no_object_is_refused_even_when_s3_is_allowed(folder: Path, url: str):
    assert (
        one_problem(folder, f"{url},loa,{ORDER},,,", files_anywhere=True)
        == f"{url!r} is not an S3 object (s3://bucket/key)"
    )


def test_an_s3_key_keeps_its_hash_and_question_marks(folder: Path):
    rows, problems = read(manifest(folder, f"{HEADER}\ns3://scans/invoice#2?.pdf,invoice,{ORDER},,,\n"), True)
    assert problems == [] and (rows[0].file.key, rows[0].file.name) == ("invoice#2?.pdf", "invoice#2?.pdf")


def test_one_order_written_in_two_cases_is_one_order(folder: Path):
    rows, problems = read(
        manifest(
            folder,
            f"{HEADER}\norders/loa.pdf,loa,{ORDER.upper()},,,\norders/invoice.pdf,invoice,{ORDER},,,\n",
        )
    )
    assert problems == [] and {row.target.porting_order_id for row in rows} == {ORDER}  # type: ignore[union-attr]


def test_an_intake_key_over_s3s_limit_is_the_rows_problem(folder: Path):
    problem = one_problem(folder, f"s3://scans/{'n' * 1000}.pdf,loa,{ORDER},,,", files_anywhere=True)
    assert problem.startswith("the object key is") and "over S3's limit of 1024" in problem


def test_excels_trailing_commas_make_an_unnamed_column_that_is_ignored(folder: Path):
    rows, problems = read(
        manifest(
            folder, f"{HEADER},,\norders/loa.pdf,loa,{ORDER},,,,,\norders/invoice.pdf,invoice,{ORDER},,,,x,\n"
        )
    )
    assert [row.number for row in rows] == [2]
    assert problems == ["row 3: a cell under a column with no name"]


def test_a_json_line_holding_a_line_separator_is_one_line(folder: Path):
    line = json.dumps(
        {"file": "orders/loa.pdf", "type": "loa", "porting_order": ORDER, "description": "a\u2028b"},
        ensure_ascii=False,
    )
    rows, problems = read(manifest(folder, line + "\n", name="manifest.jsonl"))
    assert rows == [] and problems == [
        "row 1: the description must be printable ASCII on one line (it travels as S3 object metadata)"
    ]


def test_a_path_out_of_the_manifests_folder_is_refused_unless_asked_for(folder: Path):
    assert one_problem(folder, f"../../etc/passwd,other,{ORDER},,,") == (
        "../../etc/passwd: outside the manifest's folder (--files-anywhere allows it)"
    )
    assert one_problem(folder, f"../secret.pdf,other,{ORDER},,,") == (
        "../secret.pdf: outside the manifest's folder (--files-anywhere allows it)"
    )
    rows, problems = read(
        manifest(folder, f"{HEADER}\n../secret.pdf,other,{ORDER},,,\n"), files_anywhere=True
    )
    assert problems == [] and rows[0].file.path == (folder.parent / "secret.pdf").resolve()


def test_an_absolute_path_is_refused_unless_asked_for(folder: Path):
    absolute = folder / "orders" / "loa.pdf"
    assert one_problem(folder, f"{absolute},loa,{ORDER},,,") == (
        f"{absolute}: an absolute path (--files-anywhere allows it)"
    )


def test_a_symlink_is_followed_and_judged_by_where_it_leads(folder: Path):
    (folder / "orders" / "out.pdf").symlink_to(folder.parent / "secret.pdf")
    (folder / "orders" / "in.pdf").symlink_to(folder / "orders" / "loa.pdf")

    assert one_problem(folder, f"orders/out.pdf,other,{ORDER},,,") == (
        "orders/out.pdf: outside the manifest's folder (through a symlink) (--files-anywhere allows it)"
    )
    rows, problems = read(manifest(folder, f"{HEADER}\norders/in.pdf,loa,{ORDER},,,\n"))
    assert problems == [] and rows[0].file.path == (folder / "orders" / "loa.pdf").resolve()


def test_a_pipe_is_refused_without_being_opened(folder: Path):
    os.mkfifo(folder / "orders" / "pipe.pdf")  # opening it to read would wait for a writer forever
    assert one_problem(folder, f"orders/pipe.pdf,loa,{ORDER},,,") == "orders/pipe.pdf: not a regular file"


def test_rows_keep_the_numbers_a_spreadsheet_shows_and_the_good_rows_go_on(folder: Path):
    lines = (
        f"orders/loa.pdf,loa,{ORDER},,,",
        ",,,,,",
        f"missing.pdf,loa,{ORDER},,,",
        f"orders/invoice.pdf,invoice,{ORDER},,,",
    )
    text = HEADER + "\n" + "\n".join(lines) + "\n"
    rows, problems = read(manifest(folder, text))

    assert [row.number for row in rows] == [2, 5]
    assert problems == ["row 4: missing.pdf: no such file"]


def test_an_s3_object_is_named_by_bucket_and_key(folder: Path):
    rows, problems = read(manifest(folder, f"{HEADER}\ns3://scans/2026/12/LOA 1.pdf,loa,{ORDER},,,\n"), True)
    assert problems == []
    assert (rows[0].file.bucket, rows[0].file.key, rows[0].file.name) == (
        "scans",
        "2026/12/LOA 1.pdf",
        "LOA 1.pdf",
    )


def test_json_lines_take_the_same_fields(folder: Path):
    lines = [
        {"file": "orders/loa.pdf", "type": "loa", "porting_order": ORDER, "description": None},
        {},
        {"file": "orders/invoice.pdf", "type": "invoice", "port_request": REQUEST, "sub_request": SUB},
        {"type": "csr", "porting_order": ORDER},
    ]
    text = "\n".join(json.dumps(line) if line else "" for line in lines) + "\n"
    rows, problems = read(manifest(folder, text, name="manifest.jsonl"))

    assert problems == ["row 4: no file"]  # a JSON line's row number is its line number
    assert [row.number for row in rows] == [1, 3]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 1 is not JSON"),
        ('["orders/loa.pdf", "loa"]', "line 1 is not a JSON object"),
        (json.dumps({"file": "orders/loa.pdf", "type": "loa", "order": ORDER}), "unknown field(s) 'order'"),
        (json.dumps({"file": "orders/loa.pdf", "type": 1, "porting_order": ORDER}), "type must be a string"),
    ],
)
def test_a_json_line_that_is_not_a_row_stops_the_run(folder: Path, line: str, message: str):
    with pytest.raises(ManifestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_manifest(manifest(folder, line + "\n", name="manifest.jsonl"))


def test_a_problem_keeps_the_file_the_row_named_for_the_report(folder: Path):
    _, problems = read_manifest(manifest(folder, f"{HEADER}\n../secret.pdf,other,{ORDER},,,\n"))
    assert problems == [Problem(2, problems[0].message, file="../secret.pdf")]


def test_the_sample_manifests_say_the_same_in_csv_and_json_lines():
    (csv_rows, csv_problems), (jsonl_rows, jsonl_problems) = (
        read_manifest(SAMPLES / name) for name in ("bulk-onboarding.csv", "bulk-onboarding.jsonl")
    )
    assert csv_problems == jsonl_problems == []
    assert len(csv_rows) == 4
    assert [(r.file, r.target, r.description) for r in csv_rows] == [
        (r.file, r.target, r.description) for r in jsonl_rows
    ]

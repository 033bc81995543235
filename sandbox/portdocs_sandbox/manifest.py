"""A bulk manifest (docs/bulk.md): one row per document, as CSV (a porting team's spreadsheet) or
JSON Lines (a machine's), read into rows or into problems, each with its row number. Nothing here
reads a document or calls anything: what each row names is checked by portdocs_sandbox.bulk.

Rows are numbered as a person finds them: in a CSV as a spreadsheet shows it (the header is row
1, the first document row 2), in JSON Lines by line."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portdocs.documents import DocumentType, DraftTarget, PortingOrderTarget, Target, check_key
from portdocs.errors import PermanentError

# S3 keeps at most 2 KB of an object's metadata; Telnyx's descriptions are shorter still.
MAX_DESCRIPTION = 1024
COLUMNS = ("file", "type", "porting_order", "port_request", "sub_request", "description")
REQUIRED_COLUMNS = ("file", "type")
# More than a migration of hundreds of orders needs (each with an LOA, an invoice, a CSR), few
# enough for one run to check, send and wait on: a larger set is split into several manifests.
MAX_ROWS = 5000
# A manifest of MAX_ROWS rows of long paths and descriptions is well under this.
MAX_MANIFEST_BYTES = 8 * 1024 * 1024
# Where a CSV row that cannot be read as one says why (no column is named this).
NOT_A_ROW = "\x00not a row"
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class ManifestError(Exception):
    """The manifest as a whole cannot be read: nothing in it is checked or sent."""


@dataclass(frozen=True)
class Problem:
    """Why a row cannot be sent (`row` None: the manifest as a whole)."""

    row: int | None
    message: str
    # The row's file as the manifest names it, for a report of a row that could not be read.
    file: str = ""

    def __str__(self) -> str:
        return self.message if self.row is None else f"row {self.row}: {self.message}"


@dataclass(frozen=True)
class FileSource:
    """Where a row's file is: a local path (resolved) or an S3 object."""

    path: Path | None = None
    bucket: str | None = None
    key: str | None = None

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else Path(self.key or "").name

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Row:
    number: int
    file: FileSource
    target: Target
    description: str | None


def read_manifest(path: Path, files_anywhere: bool = False) -> tuple[list[Row], list[Problem]]:
    """The manifest's rows and the problems of those that cannot be sent. ManifestError when the
    manifest itself cannot be read (its format, encoding, columns, size)."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ManifestError(f"{path.name}: name the manifest .csv or .jsonl (JSON Lines)")
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{path.name} is over {MAX_MANIFEST_BYTES // 1024 // 1024} MiB: split it")
        raw = path.read_bytes()
    except OSError as error:
        raise ManifestError(f"cannot read {path}: {error.strerror}") from None
    records = _csv_records(_text_of(raw)) if kind == "csv" else _jsonl_records(_text_of(raw))
    if not records:
        raise ManifestError(f"{path.name} has no rows")
    if len(records) > MAX_ROWS:
        raise ManifestError(f"{path.name} has {len(records)} rows; at most {MAX_ROWS}: split it")
    rows, problems = [], []
    folder = path.resolve().parent
    for number, record in records:
        try:
            rows.append(_row(number, record, folder, files_anywhere))
        except PermanentError as error:
            problems.append(Problem(number, str(error), file=record.get("file") or ""))
    return rows, problems


def _text_of(raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ManifestError("the manifest is UTF-16: save it as UTF-8 (Excel: CSV UTF-8)")
    if b"\x00" in raw:
        raise ManifestError("the manifest holds NUL bytes: it is not a text file")
    try:
        return raw.decode("utf-8-sig")  # Excel's "CSV UTF-8" begins with a byte order mark
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ManifestError(
            f"the manifest is not UTF-8 (line {line}, byte {error.start}): "
            "save it as UTF-8 (Excel: CSV UTF-8)"
        ) from None


def _csv_records(text: str) -> list[tuple[int, dict[str, str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, dict[str, str]]] = []
    try:
        header = next(reader, None)
        if header is None:
            return []
        columns = _columns(header)
        for cells in reader:
            number = len(records) + 2  # the spreadsheet's row: the header is row 1
            if not any(cell.strip() for cell in cells):
                records.append((number, {}))  # kept, so that the numbers stay the spreadsheet's
                continue
            if len(cells) > len(columns):
                records.append(
                    (number, {NOT_A_ROW: f"{len(cells)} cells, but the header names {len(columns)}"})
                )
                continue
            if any(cell.strip() for name, cell in zip(columns, cells, strict=False) if not name):
                records.append((number, {NOT_A_ROW: "a cell under a column with no name"}))
                continue
            records.append((number, dict(zip(columns, cells, strict=False))))
    except csv.Error as error:
        raise ManifestError(f"the manifest is not valid CSV (row {len(records) + 2}): {error}") from None
    return [(number, record) for number, record in records if record]


def _columns(header: list[str]) -> list[str]:
    columns = [name.strip().lower() for name in header]
    unknown = sorted(set(columns) - set(COLUMNS) - {""})  # an unnamed column: Excel's trailing commas
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    repeated = sorted({name for name in columns if name and columns.count(name) > 1})
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s) {', '.join(repr(name) for name in unknown)}")
    if repeated:
        problems.append(f"column(s) named twice: {', '.join(repeated)}")
    if problems:
        raise ManifestError("; ".join(problems) + f" (the columns are {', '.join(COLUMNS)})")
    return columns


def _jsonl_records(text: str) -> list[tuple[int, dict[str, str]]]:
    records = []
    # Lines end at \n alone: str.splitlines would also split at U+2028 or a form feed inside a value.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):
            raise ManifestError(f"line {number} is not JSON") from None
        if not isinstance(value, dict):
            raise ManifestError(f"line {number} is not a JSON object")
        unknown = sorted(set(value) - set(COLUMNS))
        if unknown:
            raise ManifestError(
                f"line {number}: unknown field(s) {', '.join(repr(name) for name in unknown)} "
                f"(the fields are {', '.join(COLUMNS)})"
            )
        records.append((number, {name: _text_field(number, name, cell) for name, cell in value.items()}))
    return records


def _text_field(number: int, name: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ManifestError(f"line {number}: {name} must be a string")
    return value


def _row(number: int, record: dict[str, str], folder: Path, files_anywhere: bool) -> Row:
    if record.get(NOT_A_ROW):
        raise PermanentError(record[NOT_A_ROW])
    given = {name: (record.get(name) or "").strip() for name in COLUMNS}
    if not given["file"]:
        raise PermanentError("no file")
    if not given["type"]:
        raise PermanentError("no type (loa, invoice, csr or other)")
    description = given["description"] or None
    if description is not None and not (description.isascii() and description.isprintable()):
        raise PermanentError(
            "the description must be printable ASCII on one line (it travels as S3 object metadata)"
        )
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise PermanentError(f"the description is over {MAX_DESCRIPTION} characters")
    source, target = _file_source(given["file"], folder, files_anywhere), _target(given)
    check_key(target.intake_key(source.name))
    return Row(number, source, target, description)


def _target(given: dict[str, str]) -> Target:
    document_type = DocumentType.parse(given["type"])
    order, request, sub = (_id(given[name]) for name in ("porting_order", "port_request", "sub_request"))
    if order and (request or sub):
        raise PermanentError("names both a porting order and a draft port request: one target per row")
    if order:
        return PortingOrderTarget(order, document_type)
    if request and sub:
        return DraftTarget(request, sub, document_type)
    if request or sub:
        raise PermanentError("a draft target takes both port_request and sub_request")
    raise PermanentError("no target: give porting_order, or port_request and sub_request")


def _id(given: str) -> str:
    """Telnyx's ids are UUIDs, whose case means nothing: one order written two ways is one order."""
    try:
        return str(uuid.UUID(given))
    except ValueError:
        return given  # checked, and refused with its reason, by the target


def _file_source(given: str, folder: Path, files_anywhere: bool) -> FileSource:
    if given.lower().startswith("s3://"):
        if not files_anywhere:  # another bucket is outside the folder too: any object the operator can read
            raise PermanentError(f"{given}: an S3 object (--files-anywhere allows it)")
        # Split by hand: a URL parser would take a key's '#' or '?' for a fragment or a query.
        bucket, _, key = given[len("s3://") :].partition("/")
        if not bucket or "@" in bucket or key.rpartition("/")[2] in ("", ".", ".."):
            raise PermanentError(f"{given!r} is not an S3 object (s3://bucket/key)")
        return FileSource(bucket=bucket, key=key)
    named = Path(given).expanduser()
    if named.is_absolute() and not files_anywhere:
        raise PermanentError(f"{given}: an absolute path (--files-anywhere allows it)")
    # Symlinks followed: where a file really is decides whether it is inside the folder.
    resolved = (folder / named).resolve()
    if not files_anywhere and not resolved.is_relative_to(folder):
        via = " (through a symlink)" if (folder / named).is_symlink() else ""
        raise PermanentError(f"{given}: outside the manifest's folder{via} (--files-anywhere allows it)")
    _check_regular_file(given, resolved)
    return FileSource(path=resolved)


def _check_regular_file(given: str, resolved: Path) -> None:
    try:
        mode = os.stat(resolved).st_mode
    except FileNotFoundError:
        raise PermanentError(f"{given}: no such file") from None
    except OSError as error:
        raise PermanentError(f"{given}: {error.strerror}") from None
    if not stat.S_ISREG(mode):  # a folder, a device, a pipe: nothing to send, maybe no end to read
        raise PermanentError(f"{given}: not a regular file")

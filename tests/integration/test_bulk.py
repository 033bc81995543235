"""`portdocs bulk` through both handlers under moto, against the Telnyx emulator over real HTTP:
every row checked before anything is sent, the valid ones attached once, the invalid ones reported
with their reasons, and a second run that sends nothing."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from pathlib import Path

import boto3
import pytest

from portdocs.config import DEFAULT_ALLOWED_CONTENT_TYPES, DEFAULT_MAX_DOCUMENT_BYTES
from portdocs.ledger import LedgerEntry
from portdocs_sandbox import bulk
from portdocs_sandbox.bulk import Action, Outcome, Plan
from portdocs_sandbox.manifest import COLUMNS
from portdocs_sandbox.target import Target
from portdocs_sandbox.telnyx_emulator import Fault
from tests.files import pdf
from tests.support import PORT_REQUEST, PORTING_ORDER, SUB_REQUEST, UNKNOWN_ORDER, Pipeline

CANCELLED_ORDER = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
SECOND_ORDER = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
HEADER = ",".join(COLUMNS)


@pytest.fixture
def target(pipeline: Pipeline) -> Target:
    pipeline.emulator.seed_porting_order(SECOND_ORDER)
    pipeline.emulator.seed_porting_order(CANCELLED_ORDER)
    pipeline.emulator.set_order_status(CANCELLED_ORDER, "cancelled")
    return Target(
        outputs=pipeline.stack.outputs,
        session=boto3.session.Session(),
        endpoint_url=None,
        max_document_bytes=DEFAULT_MAX_DOCUMENT_BYTES,
        allowed_content_types=DEFAULT_ALLOWED_CONTENT_TYPES,
        telnyx_api_base_url=pipeline.emulator.api_url,
    )


def files(folder: Path, **named: bytes) -> None:
    for name, body in named.items():
        (folder / name).write_bytes(body)


def manifest(folder: Path, *rows: str) -> Path:
    path = folder / "manifest.csv"
    path.write_text("\n".join((HEADER, *rows)) + "\n")
    return path


def checked(target: Target, path: Path, tmp_path: Path, shared_files: bool = False) -> tuple[list, Plan]:
    files_anywhere = "s3://" in path.read_text()  # the one way these tests reach outside the folder
    return bulk.plan(
        target, path, tmp_path / "downloads", files_anywhere=files_anywhere, shared_files=shared_files
    )


def run(
    pipeline: Pipeline, target: Target, path: Path, tmp_path: Path, retry_rejected: bool = False
) -> list[Outcome]:
    rows, found = checked(target, path, tmp_path)
    outcomes = bulk.send(target, rows, found, retry_rejected)
    pipeline.runtime.drain()
    bulk.wait(target, outcomes, seconds=0)
    return outcomes


def entry(outcome: Outcome) -> LedgerEntry:
    assert outcome.entry is not None, outcome
    return outcome.entry


def uploads(pipeline: Pipeline) -> int:
    return len([call for call in pipeline.emulator.calls("documents") if call["method"] == "POST"])


def by_row(outcomes: list[Outcome]) -> dict[int, tuple[str, str]]:
    return {o.number: (str(o.action), o.state) for o in outcomes}


def test_valid_rows_are_attached_once_and_invalid_ones_reported_before_anything_is_sent(
    pipeline: Pipeline, target: Target, tmp_path: Path
):
    (tmp_path / "downloads").mkdir()
    files(tmp_path, loa1=pdf("LOA 1"), inv1=pdf("invoice 1"), loa2=pdf("LOA 2"), csr=pdf("CSR"))
    files(tmp_path, draft=pdf("draft LOA"), late=pdf("late"), junk=b"not a document at all")
    path = manifest(
        tmp_path,
        f"loa1,loa,{PORTING_ORDER},,,",
        f"inv1,invoice,{PORTING_ORDER},,,",
        f"loa2,loa,{SECOND_ORDER},,,signed by the customer",
        f"csr,csr,{SECOND_ORDER},,,",
        f"draft,loa,,{PORT_REQUEST},{SUB_REQUEST},",
        f"late,loa,{CANCELLED_ORDER},,,",
        f"junk,other,{PORTING_ORDER},,,",
        f"late,invoice,{UNKNOWN_ORDER},,,",
        f"missing,other,{PORTING_ORDER},,,",
    )

    rows, found = checked(target, path, tmp_path, shared_files=True)

    assert {p.row: p.message for p in found.problems} == {
        7: f"porting order {CANCELLED_ORDER} is cancelled on Telnyx: it takes no more documents",
        8: "the file's type could not be recognised; allowed types: application/pdf, image/jpeg, "
        "image/png, image/tiff, image/heic",
        9: found.invalid()[9],
        10: "missing: no such file",
    }
    assert found.invalid()[9].startswith(f"Telnyx has no porting order {UNKNOWN_ORDER} for this account")
    assert uploads(pipeline) == 0 and not pipeline.ledger()  # nothing sent while checking

    outcomes = bulk.send(target, rows, found, retry_rejected=False)
    pipeline.runtime.drain()
    bulk.wait(target, outcomes, seconds=0)

    assert by_row(outcomes) == {
        **{n: ("sent", "associated") for n in range(2, 7)},
        **{n: ("not sent", "invalid") for n in range(7, 11)},
    }
    assert uploads(pipeline) == 4  # and the draft's one form
    assert len(pipeline.emulator.calls("upload_requests")) == 1
    first, second = (pipeline.emulator.porting_order(o) for o in (PORTING_ORDER, SECOND_ORDER))
    attached = {o.number: entry(o).telnyx_document_id for o in outcomes if o.entry}
    assert first["documents"] == {"loa": attached[2], "invoice": attached[3]}
    assert second["documents"]["loa"] == attached[4]
    assert [d["document_id"] for d in second["additional_documents"]] == [attached[5]]
    assert pipeline.emulator.porting_order(CANCELLED_ORDER)["documents"] == {"loa": None, "invoice": None}
    loa2 = next(o for o in outcomes if o.number == 4)
    assert entry(loa2).description == "signed by the customer"


def test_a_second_run_of_the_same_manifest_sends_nothing(pipeline: Pipeline, target: Target, tmp_path: Path):
    files(tmp_path, loa=pdf("LOA"), invoice=pdf("invoice"))
    path = manifest(tmp_path, f"loa,loa,{PORTING_ORDER},,,", f"invoice,invoice,{PORTING_ORDER},,,")
    first = run(pipeline, target, path, tmp_path)
    documents = {o.number: entry(o).document_id for o in first}
    bucket = target.outputs["IntakeBucketName"]
    versions = len(boto3.client("s3").list_object_versions(Bucket=bucket)["Versions"])

    again = run(pipeline, target, path, tmp_path)

    assert by_row(again) == {2: ("attached before", "associated"), 3: ("attached before", "associated")}
    assert {o.number: entry(o).document_id for o in again} == documents
    assert uploads(pipeline) == 2
    assert len(boto3.client("s3").list_object_versions(Bucket=bucket)["Versions"]) == versions


def test_a_changed_file_is_a_new_row_and_replaces_the_orders_loa(
    pipeline: Pipeline, target: Target, tmp_path: Path
):
    files(tmp_path, loa=pdf("LOA, unsigned"))
    path = manifest(tmp_path, f"loa,loa,{PORTING_ORDER},,,")
    run(pipeline, target, path, tmp_path)
    files(tmp_path, loa=pdf("LOA, signed"))

    (outcome,) = run(pipeline, target, path, tmp_path)

    assert (outcome.action, outcome.state) == (Action.SENT, "associated")
    stored = pipeline.emulator.v2_document_bytes(str(entry(outcome).telnyx_document_id))
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(pdf("LOA, signed")).hexdigest()
    assert (
        pipeline.emulator.porting_order(PORTING_ORDER)["documents"]["loa"]
        == entry(outcome).telnyx_document_id
    )


def test_a_rejected_row_is_sent_again_only_when_asked(pipeline: Pipeline, target: Target, tmp_path: Path):
    files(tmp_path, csr=pdf("CSR"))
    path = manifest(tmp_path, f"csr,csr,{PORTING_ORDER},,,")
    pipeline.emulator.inject(Fault("additional_documents", status=422, method="POST", times=1))
    (first,) = run(pipeline, target, path, tmp_path)
    assert first.state == "rejected"

    (again,) = run(pipeline, target, path, tmp_path)
    assert (again.action, again.state) == (Action.REJECTED_BEFORE, "rejected")
    assert again.as_report()["reason"].endswith("(not sent again: --retry-rejected sends it)")
    assert uploads(pipeline) == 1

    (retried,) = run(pipeline, target, path, tmp_path, retry_rejected=True)
    assert (retried.action, retried.state) == (Action.RETRIED, "associated")
    assert entry(retried).document_id == entry(first).document_id  # the same document, not a second
    additional = pipeline.emulator.porting_order(PORTING_ORDER)["additional_documents"]
    assert [d["document_id"] for d in additional] == [entry(retried).telnyx_document_id]


def test_a_file_changed_between_its_check_and_its_drop_is_not_sent(
    pipeline: Pipeline, target: Target, tmp_path: Path
):
    files(tmp_path, loa=pdf("LOA as checked"))
    rows, found = checked(target, manifest(tmp_path, f"loa,loa,{PORTING_ORDER},,,"), tmp_path)
    (tmp_path / "loa").write_bytes(b"%PDF-1.4 swapped in after the check")

    (outcome,) = bulk.send(target, rows, found, retry_rejected=False)

    assert (outcome.action, outcome.state) == (Action.INVALID, "invalid")
    assert outcome.reason == f"{tmp_path / 'loa'} changed after it was checked: run again"
    assert "Versions" not in boto3.client("s3").list_object_versions(
        Bucket=target.outputs["IntakeBucketName"]
    )


def test_rows_that_clash_are_each_reported_and_only_the_first_of_a_repeat_is_sent(
    pipeline: Pipeline, target: Target, tmp_path: Path
):
    files(tmp_path, loa=pdf("LOA"), other_loa=pdf("another LOA"), invoice=pdf("invoice"))
    for folder, text in (("sub", "another invoice"), ("sub2", "a third invoice")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "invoice").write_bytes(pdf(text))
    path = manifest(
        tmp_path,
        f"loa,loa,{PORTING_ORDER},,,",
        f"loa,loa,{SECOND_ORDER},,,",  # one LOA pasted into another order's row
        f"other_loa,loa,{SECOND_ORDER},,,",
        f"invoice,invoice,{PORTING_ORDER},,,",
        f"invoice,invoice,{PORTING_ORDER},,,",  # the same row twice
        f"sub/invoice,other,{PORTING_ORDER},,,",  # the same name, other bytes, same type: one key
        f"sub2/invoice,other,{PORTING_ORDER},,,",
    )

    _, found = checked(target, path, tmp_path)

    problems = sorted(str(p) for p in found.problems)
    key = f"porting-orders/{PORTING_ORDER}/other/invoice"
    assert problems == [
        "row 2: the same file as row(s) 3, for another target (--allow-shared-files allows it)",
        "row 3: the same file as row(s) 2, for another target (--allow-shared-files allows it)",
        f"row 3: two files for one place (rows 3, 4): porting order {SECOND_ORDER} has one loa: "
        "keep one of these rows",
        f"row 4: two files for one place (rows 3, 4): porting order {SECOND_ORDER} has one loa: "
        "keep one of these rows",
        "row 6: repeats row 5",
        f"row 7: two files for one place (rows 7, 8): both would be dropped as {key}: rename one",
        f"row 8: two files for one place (rows 7, 8): both would be dropped as {key}: rename one",
    ]
    assert [c.row.number for c in found.checked] == [5]


def test_a_file_in_another_bucket_is_fetched_checked_and_dropped(
    pipeline: Pipeline, target: Target, tmp_path: Path
):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="carrier-scans")
    s3.put_object(Bucket="carrier-scans", Key="2026/12/LOA 7.pdf", Body=pdf("LOA 7"))
    path = manifest(
        tmp_path,
        f"s3://carrier-scans/2026/12/LOA 7.pdf,loa,{PORTING_ORDER},,,",
        f"s3://carrier-scans/2026/12/none.pdf,invoice,{PORTING_ORDER},,,",
    )

    first, missing = run(pipeline, target, path, tmp_path)

    assert (first.action, first.state) == (Action.SENT, "associated")
    assert first.dropped is not None and first.dropped.key == f"porting-orders/{PORTING_ORDER}/loa/LOA 7.pdf"
    assert pipeline.emulator.v2_document_bytes(str(entry(first).telnyx_document_id)) == pdf("LOA 7")
    assert (missing.state, missing.reason) == (
        "invalid",
        "cannot read s3://carrier-scans/2026/12/none.pdf: 404",
    )


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_the_report_has_a_line_per_row(pipeline: Pipeline, target: Target, tmp_path: Path, suffix: str):
    files(tmp_path, loa=pdf("LOA"))
    outcomes = run(
        pipeline, target, manifest(tmp_path, f"loa,loa,{PORTING_ORDER},,,", "../x,loa,,,,"), tmp_path
    )
    report = tmp_path / f"report{suffix}"

    bulk.write_report(report, outcomes)

    if suffix == ".json":
        lines = json.loads(report.read_text())
    else:
        with report.open(newline="") as file:
            lines = list(csv.DictReader(file))
    attached, refused = lines
    assert list(attached) == list(bulk.REPORT_FIELDS)
    assert attached["state"] == "associated" and attached["action"] == "sent"
    assert attached["telnyx_document_id"] == entry(outcomes[0]).telnyx_document_id
    assert attached["document_id"] == entry(outcomes[0]).document_id
    assert attached["target"] == f"porting order {PORTING_ORDER}" and attached["document_type"] == "loa"
    assert refused["row"] == "3" and refused["file"] == "../x" and refused["state"] == "invalid"
    assert refused["reason"] == "../x: outside the manifest's folder (--files-anywhere allows it)"


def test_the_csv_report_keeps_a_file_name_that_looks_like_a_formula_as_text(
    pipeline: Pipeline, target: Target, tmp_path: Path
):
    name = '=HYPERLINK("evil.example","open me")'
    path = tmp_path / "manifest.jsonl"
    path.write_text(json.dumps({"file": name, "type": "loa", "porting_order": PORTING_ORDER}) + "\n")
    outcomes = run(pipeline, target, path, tmp_path)

    bulk.write_report(tmp_path / "report.csv", outcomes)

    with (tmp_path / "report.csv").open(newline="") as file:
        (line,) = csv.DictReader(file)
    assert (line["file"], line["reason"]) == (f"'{name}", f"'{name}: no such file")
    assert line["state"] == "invalid"


def test_rows_attached_before_are_not_checked_again(pipeline: Pipeline, target: Target, tmp_path: Path):
    files(tmp_path, loa=pdf("LOA"))
    path = manifest(tmp_path, f"loa,loa,{PORTING_ORDER},,,")
    run(pipeline, target, path, tmp_path)
    pipeline.emulator.set_order_status(PORTING_ORDER, "ported")
    # The stack now takes PNGs only: a check of the PDF would refuse it; none is made.
    narrowed = dataclasses.replace(target, allowed_content_types=("image/png",))

    rows, found = checked(narrowed, path, tmp_path)

    assert found.problems == []
    assert found.before[2].state == "associated"
    (outcome,) = bulk.send(narrowed, rows, found, retry_rejected=False)
    assert (outcome.action, outcome.state) == (Action.ATTACHED_BEFORE, "associated")


def test_a_run_again_before_the_pipeline_caught_up_waits_for_the_first_drop(
    pipeline: Pipeline, target: Target, tmp_path: Path
):
    files(tmp_path, csr=pdf("CSR"))
    path = manifest(tmp_path, f"csr,csr,{PORTING_ORDER},,,")
    rows, found = checked(target, path, tmp_path)
    (first,) = bulk.send(target, rows, found, retry_rejected=False)  # stopped before its wait

    rows, found = checked(target, path, tmp_path)
    (again,) = bulk.send(target, rows, found, retry_rejected=False)
    pipeline.runtime.drain()
    bulk.wait(target, [again], seconds=0)

    assert (again.action, again.state) == (Action.IN_PROGRESS, "associated")
    assert again.dropped == first.dropped  # no second version: on AWS it would be a second document
    versions = boto3.client("s3").list_object_versions(Bucket=target.outputs["IntakeBucketName"])["Versions"]
    assert len(versions) == 1
    assert len(pipeline.emulator.porting_order(PORTING_ORDER)["additional_documents"]) == 1


def test_a_file_deleted_before_its_drop_is_reported_and_the_others_go_on(
    pipeline: Pipeline, target: Target, tmp_path: Path
):
    files(tmp_path, loa=pdf("LOA"), invoice=pdf("invoice"))
    rows, found = checked(
        target,
        manifest(tmp_path, f"loa,loa,{PORTING_ORDER},,,", f"invoice,invoice,{PORTING_ORDER},,,"),
        tmp_path,
    )
    (tmp_path / "loa").unlink()

    gone, sent = bulk.send(target, rows, found, retry_rejected=False)

    assert (gone.action, gone.state) == (Action.INVALID, "invalid")
    assert gone.reason.startswith("could not be dropped: [Errno 2] No such file or directory")
    assert sent.action is Action.SENT

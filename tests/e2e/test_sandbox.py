"""The whole pipeline through the sandbox, as a user runs it: `portdocs sandbox` in its own
process (moto server, Telnyx emulator, one worker process per function), driven over real
sockets by the CLI, boto3 and the emulator's admin API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote_plus

import pytest
import requests

from portdocs.shapes import DOCUMENT_EVENT_SCHEMA, validate
from portdocs_sandbox import cli
from portdocs_sandbox.sandbox import SandboxState
from portdocs_sandbox.telnyx_emulator import DEFAULT_API_KEY
from tests.files import pdf
from tests.support import EVENTS, SAMPLES

pytestmark = pytest.mark.e2e
LOA = SAMPLES / "Letter of Authorization.pdf"
INVOICE = SAMPLES / "losing-carrier-invoice.pdf"
WAIT_SECONDS = 90


@dataclass(frozen=True)
class RunningSandbox:
    state: SandboxState
    state_file: Path
    log_dir: Path


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    home = tmp_path_factory.mktemp("sandbox")
    state_file = home / "sandbox.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "portdocs_sandbox.cli",
            "sandbox",
            "--retry-after",
            "1",
            "--state-file",
            str(state_file),
            "--log-dir",
            str(home / "logs"),
            # The most an operator can turn on (the template's LogLevel): the log scan at the end of
            # this module holds every line of every test to "nothing secret".
            "--log-level",
            "DEBUG",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(home / "sandbox.err").open("w"),
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    )
    try:
        deadline = time.monotonic() + 120
        while not state_file.exists():
            assert process.poll() is None, (home / "sandbox.err").read_text()
            assert time.monotonic() < deadline, "the sandbox did not start"
            time.sleep(0.2)
        yield RunningSandbox(SandboxState.read(state_file), state_file, home / "logs")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert not state_file.exists(), "the sandbox removes its state file when it stops"


T = TypeVar("T")


def eventually(read: Callable[[], T], predicate: Callable[[T], bool], what: str) -> T:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        value = read()
        if predicate(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}: {value}")
        time.sleep(0.5)


class Session:
    """One test's view of the sandbox: its own draft port request, the CLI, boto3, the emulator."""

    def __init__(self, sandbox: RunningSandbox, capsys: pytest.CaptureFixture[str]) -> None:
        self.state = sandbox.state
        self.state_file = sandbox.state_file
        self.capsys = capsys
        self.port_request = str(uuid.uuid4())
        self.sub_requests = [str(uuid.uuid4()), str(uuid.uuid4())]
        self.admin(
            "POST", "draft_port_requests", {"id": self.port_request, "sub_request_ids": self.sub_requests}
        )
        self.porting_order = str(uuid.uuid4())
        self.admin("POST", "porting_orders", {"id": self.porting_order})
        self.target = cli.Target.from_sandbox(sandbox.state)

    def portdocs(self, *args: str) -> tuple[int, str]:
        self.capsys.readouterr()
        code = cli.main([*args, "--state-file", str(self.state_file)])
        captured = self.capsys.readouterr()
        return code, captured.out + captured.err

    def drop(self, path: Path, document_type: str, sub_request: int = 0) -> None:
        code, output = self.portdocs(
            "drop",
            str(path),
            "--port-request",
            self.port_request,
            "--sub-request",
            self.sub_requests[sub_request],
            "--type",
            document_type,
        )
        assert code == 0, output

    def drop_for_order(self, path: Path, document_type: str) -> None:
        code, output = self.portdocs(
            "drop", str(path), "--porting-order", self.porting_order, "--type", document_type
        )
        assert code == 0, output

    def status(self, *target: str) -> list[dict[str, Any]]:
        code, output = self.portdocs("status", *(target or ("--port-request", self.port_request)), "--json")
        assert code == 0, output
        return json.loads(output)

    def order_status(self) -> list[dict[str, Any]]:
        return self.status("--porting-order", self.porting_order)

    def order(self) -> dict[str, Any]:
        """The session's porting order as the emulator holds it: its LOA, invoice, additional documents."""
        return self.admin("GET", f"porting_orders/{self.porting_order}")

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], what: str) -> list[dict[str, Any]]:
        return eventually(self.status, predicate, what)

    def wait_for_tags(
        self, key: str, predicate: Callable[[dict[str, str]], bool], what: str
    ) -> dict[str, str]:
        """The tag follows the ledger (outcomes.py writes it second), so it is awaited, not read once."""
        s3 = self.target.client("s3")

        def tags() -> dict[str, str]:
            tag_set = s3.get_object_tagging(Bucket=self.state.outputs["IntakeBucketName"], Key=key)["TagSet"]
            return {t["Key"]: t["Value"] for t in tag_set}

        return eventually(tags, predicate, what)

    def wait_for_events(self, count: int, what: str) -> list[dict[str, Any]]:
        """This draft's document events (portdocs events --json), each checked against its schema;
        exactly `count` of them, waited for (EventBridge delivers after the ledger write)."""

        def events() -> list[dict[str, Any]]:
            code, output = self.portdocs("events", "--port-request", self.port_request, "--json")
            assert code == 0, output
            return list(json.loads(output))

        found = eventually(events, lambda found: len(found) >= count, what)
        time.sleep(1)  # and no more than that
        found = events()
        assert len(found) == count, found
        for event in found:
            assert event["source"] == "portdocs"
            validate(event["detail"], DOCUMENT_EVENT_SCHEMA)
        return found

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = requests.request(
            method, f"{self.state.emulator_api_url}/_emulator/{path}", json=body, timeout=10
        )
        answer.raise_for_status()
        return answer.json()

    def documents(self) -> list[dict[str, Any]]:
        return [
            d
            for d in self.admin("GET", "documents")["documents"]
            if d["draft_port_request_id"] == self.port_request
        ]

    def calls(self, endpoint: str) -> list[dict[str, Any]]:
        return self.admin("GET", f"calls?endpoint={endpoint}")["calls"]

    def queue_depth(self, output: str) -> int:
        attributes = self.target.client("sqs").get_queue_attributes(
            QueueUrl=self.state.outputs[output],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(v) for v in attributes.values())


@pytest.fixture
def session(sandbox: RunningSandbox, capsys: pytest.CaptureFixture[str]) -> Iterator[Session]:
    view = Session(sandbox, capsys)
    yield view
    view.admin("DELETE", "faults")


def associated(count: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda rows: sum(r["state"] == "associated" for r in rows) >= count


def test_dropped_loa_and_invoice_are_associated(session: Session):
    session.drop(LOA, "loa")
    session.drop(INVOICE, "INVOICE")

    rows = session.wait_for(associated(2), "both documents associated")

    assert sorted(r["document_type"] for r in rows) == ["invoice", "loa"]
    documents = session.documents()
    assert sorted(d["id"] for d in documents) == sorted(r["telnyx_document_id"] for r in rows)
    assert {d["draft_sub_request_id"] for d in documents} == {session.sub_requests[0]}
    # One event per association, in the published shape, naming Telnyx's document.
    events = session.wait_for_events(2, "both association events")
    assert [e["detail-type"] for e in events] == ["Document Associated"] * 2
    assert sorted(e["detail"]["telnyx_document_id"] for e in events) == sorted(d["id"] for d in documents)


def test_file_name_with_spaces_plus_and_non_ascii_survives_to_telnyx(session: Session, tmp_path: Path):
    name = "LOA +1 (signé) été.pdf"
    path = tmp_path / name
    path.write_bytes(LOA.read_bytes())
    session.drop(path, "loa")

    (row,) = session.wait_for(associated(1), "the document associated")

    (document,) = session.documents()
    assert document["url"] == row["location_url"]
    assert document["url"].endswith("%2F" + quote_plus(name, safe=""))
    assert requests.get(document["url"], timeout=10).content == LOA.read_bytes()


def test_upstream_association_message_is_applied(session: Session):
    session.drop(LOA, "loa")
    (row,) = session.wait_for(associated(1), "the LOA associated")

    code, output = session.portdocs(
        "send",
        "--port-request",
        session.port_request,
        "--sub-request",
        session.sub_requests[1],
        "--type",
        "other",
        "--url",
        row["location_url"],
        "--description",
        "copy for sub-request 2",
    )
    assert code == 0, output

    session.wait_for(associated(2), "the upstream association applied")
    copy = next(d for d in session.documents() if d["draft_sub_request_id"] == session.sub_requests[1])
    assert (copy["document_type"], copy["body"], copy["url"]) == (
        "other",
        "copy for sub-request 2",
        row["location_url"],
    )


def test_porting_order_documents_of_every_type_are_attached_once(session: Session, tmp_path: Path):
    csr, other = tmp_path / "csr.pdf", tmp_path / "photo id.pdf"
    csr.write_bytes(pdf("customer service record"))
    other.write_bytes(pdf("photo id"))
    for path, document_type in ((LOA, "loa"), (INVOICE, "invoice"), (csr, "csr"), (other, "other")):
        session.drop_for_order(path, document_type)

    rows = eventually(session.order_status, associated(4), "all four attached to the porting order")

    order = session.order()
    by_type = {r["document_type"]: r["telnyx_document_id"] for r in rows}
    assert order["documents"] == {"loa": by_type["loa"], "invoice": by_type["invoice"]}
    assert sorted((d["document_type"], d["document_id"]) for d in order["additional_documents"]) == [
        ("csr", by_type["csr"]),
        ("other", by_type["other"]),
    ]
    assert not session.status()  # nothing reached the draft flow
    events = eventually(
        lambda: session.portdocs("events", "--porting-order", session.porting_order, "--json"),
        lambda answer: len(json.loads(answer[1])) >= 4,
        "the four events",
    )
    assert {e["detail"]["target"]["porting_order_id"] for e in json.loads(events[1])} == {
        session.porting_order
    }


def test_a_faxed_tiff_loa_and_a_heic_photo_end_linked_to_the_order_as_pdf_and_jpeg(session: Session):
    session.drop_for_order(SAMPLES / "faxed-loa.tif", "loa")
    session.drop_for_order(SAMPLES / "loa-phone-photo.heic", "other")

    rows = eventually(session.order_status, associated(2), "the fax and the photo attached")

    by_type = {row["document_type"]: row for row in rows}
    assert (
        by_type["loa"]["converted_from"] == "image/tiff"
        and by_type["loa"]["content_type"] == "application/pdf"
    )
    assert (
        by_type["other"]["converted_from"] == "image/heic"
        and by_type["other"]["content_type"] == "image/jpeg"
    )
    order = session.order()
    assert order["documents"]["loa"] == by_type["loa"]["telnyx_document_id"]
    assert [d["document_id"] for d in order["additional_documents"]] == [
        by_type["other"]["telnyx_document_id"]
    ]
    for row, content_type, file_name in (
        (by_type["loa"], "application/pdf", "faxed-loa.pdf"),
        (by_type["other"], "image/jpeg", "loa-phone-photo.jpg"),
    ):
        stored = requests.get(
            f"{session.state.emulator_api_url}/v2/documents/{row['telnyx_document_id']}",
            headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
            timeout=10,
        ).json()["data"]
        assert (stored["content_type"], stored["filename"]) == (content_type, file_name)
    code, table = session.portdocs("status", "--porting-order", session.porting_order)
    assert code == 0 and "TIFF → PDF" in table and "HEIC → JPEG" in table


def test_a_porting_order_upload_telnyx_deleted_is_uploaded_again_through_the_sandbox(session: Session):
    # The link waits 3 s; meanwhile the emulator's clock passes Telnyx's 30 minutes.
    fault = {"endpoint": "porting_orders", "latency": 3.0, "times": 1, "path_contains": session.porting_order}
    session.admin("POST", "faults", fault)
    session.drop_for_order(LOA, "loa")
    eventually(
        lambda: [c for c in session.calls("porting_orders") if session.porting_order in c["path"]],
        bool,
        "the first link under way",
    )
    session.admin("POST", "clock", {"advance_seconds": 31 * 60})

    (row,) = eventually(session.order_status, associated(1), "the LOA attached after a fresh upload")

    assert row["reuploads"] == 1
    assert session.order()["documents"]["loa"] == row["telnyx_document_id"]


def test_unsupported_file_is_refused_by_drop_and_rejected_when_put_directly(session: Session, tmp_path: Path):
    text = tmp_path / "not-really.pdf"
    text.write_text("I am a text file pretending to be a PDF")

    code, output = session.portdocs(
        "drop",
        str(text),
        "--port-request",
        session.port_request,
        "--sub-request",
        session.sub_requests[0],
        "--type",
        "loa",
    )
    assert code == 2 and "could not be recognised" in output

    key = f"{session.port_request}/{session.sub_requests[0]}/loa/not-really.pdf"
    s3 = session.target.client("s3")
    s3.put_object(Bucket=session.state.outputs["IntakeBucketName"], Key=key, Body=text.read_bytes())
    (row,) = session.wait_for(lambda rows: bool(rows) and rows[0]["state"] == "rejected", "the rejection")

    assert "could not be recognised" in row["reason"]
    tags = session.wait_for_tags(key, lambda tags: "portdocs:status" in tags, "the rejection's tag")
    assert tags["portdocs:status"] == "rejected" and "could not be recognised" in tags["portdocs:reason"]
    code, table = session.portdocs("status", "--port-request", session.port_request)
    assert code == 0 and "rejected" in table and "could not be recognised" in table
    (event,) = session.wait_for_events(1, "the rejection's event")
    assert event["detail-type"] == "Document Rejected" and event["detail"]["source"]["key"] == key
    code, table = session.portdocs("events", "--port-request", session.port_request)
    assert code == 0 and "Document Rejected" in table


def test_a_bulk_manifest_of_many_orders_ends_attached_once_and_a_second_run_sends_nothing(
    session: Session, tmp_path: Path
):
    orders = [str(uuid.uuid4()) for _ in range(12)]
    for order in orders:
        session.admin("POST", "porting_orders", {"id": order})
    cancelled = orders.pop()
    session.admin("POST", f"porting_orders/{cancelled}/status", {"value": "cancelled"})
    lines = ["file,type,porting_order,port_request,sub_request,description"]
    for number, order in enumerate(orders):
        for kind in ("loa", "invoice"):
            (tmp_path / f"{kind}-{number}.pdf").write_bytes(pdf(f"{kind} for {order}"))
            lines.append(f"{kind}-{number}.pdf,{kind},{order},,,")
    (tmp_path / "late.pdf").write_bytes(pdf("an LOA too late"))
    lines += [f"late.pdf,loa,{cancelled},,,", f"/etc/passwd,other,{orders[0]},,,"]
    manifest = tmp_path / "onboarding.csv"
    manifest.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8-sig")  # as Excel saves it
    uploads_before = len(session.calls("documents"))

    code, output = session.portdocs("bulk", str(manifest), "--dry-run")
    assert code == 1, output
    assert f"row 24: porting order {cancelled} is cancelled on Telnyx" in output
    assert "row 25: /etc/passwd: an absolute path" in output
    assert len(session.calls("documents")) == uploads_before  # a dry run sends nothing

    code, output = session.portdocs("bulk", str(manifest), "--report", str(tmp_path / "report.json"))
    assert code == 1, output  # two rows did not end attached
    report = json.loads((tmp_path / "report.json").read_text())
    assert [(line["action"], line["state"]) for line in report] == [("sent", "associated")] * 22 + [
        ("not sent", "invalid")
    ] * 2
    for number, order in enumerate(orders):
        held = session.admin("GET", f"porting_orders/{order}")["documents"]
        assert held == {
            kind: report[2 * number + offset]["telnyx_document_id"]
            for offset, kind in enumerate(("loa", "invoice"))
        }
    assert len(session.calls("documents")) == uploads_before + 22
    assert "24 rows: 22 attached, 2 invalid" in output

    code, output = session.portdocs("bulk", str(manifest), "--report", str(tmp_path / "again.csv"))
    assert code == 1, output
    assert "22 sent before and associated" in output
    assert len(session.calls("documents")) == uploads_before + 22
    again = (tmp_path / "again.csv").read_text(encoding="utf-8").splitlines()
    assert sum(",attached before," in line for line in again) == 22


def test_the_sample_manifest_passes_a_dry_run_against_the_sandbox_seeds(session: Session):
    code, output = session.portdocs("bulk", str(SAMPLES / "bulk-onboarding.csv"), "--dry-run")

    assert code == 0, output
    assert "4 rows checked: 0 with a problem" in output
    assert "draft port requests are not checked on Telnyx" in output


def test_injected_rate_limits_and_server_errors_are_survived(session: Session):
    session.admin(
        "POST", "faults", {"endpoint": "upload_requests", "status": 429, "retry_after": "1", "times": 2}
    )
    # Quoting what it was sent, the file's URL among it (the log scan at the end looks for it).
    session.admin(
        "POST", "faults", {"endpoint": "supporting_documents", "status": 503, "times": 2, "echo": True}
    )
    before = len(session.calls("upload_requests"))

    session.drop(INVOICE, "invoice")

    session.wait_for(associated(1), "the invoice associated despite the faults")
    statuses = [c["status"] for c in session.calls("upload_requests")[before:]]
    assert statuses[:3] == [429, 429, 201]
    assert len(session.documents()) == 1


def test_unauthorised_lands_in_the_dlq_and_redrive_completes_after_the_fix(session: Session):
    secrets = session.target.client("secretsmanager")
    secret = session.state.outputs["CredentialsSecretArn"]
    original = json.loads(secrets.get_secret_value(SecretId=secret)["SecretString"])
    rotated = {**original, "api_token": "rotated-" + uuid.uuid4().hex}
    session.admin("PUT", "credentials", rotated)  # Telnyx revoked the token the stack holds
    try:
        session.drop(LOA, "loa")
        deadline = time.monotonic() + WAIT_SECONDS
        while session.queue_depth("IntakeDeadLetterQueueUrl") == 0:
            assert time.monotonic() < deadline, "the message never reached the DLQ"
            time.sleep(0.5)
        (row,) = session.status()
        assert (
            row["state"] == "failed" and "configuration" in row["last_error"] and "401" in row["last_error"]
        )
        assert session.documents() == []

        secrets.put_secret_value(SecretId=secret, SecretString=json.dumps(rotated))  # the operator's fix
        code, output = session.portdocs("redrive", "--queue", "intake")

        assert code == 0 and "moved 1 message(s) from the intake dead-letter queue" in output
        session.wait_for(associated(1), "the redriven document associated")
        assert len(session.documents()) == 1
    finally:
        session.admin("PUT", "credentials", original)
        secrets.put_secret_value(SecretId=secret, SecretString=json.dumps(original))


def test_duplicate_s3_notifications_produce_one_association(session: Session):
    session.drop(LOA, "loa")
    (row,) = session.wait_for(associated(1), "the LOA associated")
    source = row["source"]
    notification = json.loads(
        json.loads((EVENTS / "intake-s3-notification.json").read_text())["Records"][0]["body"]
    )
    record = notification["Records"][0]["s3"]
    record["bucket"]["name"] = source["bucket"]
    # The same event again: the object as the first delivery named it (moto's events carry no
    # versionId; real S3 would repeat the one it sent).
    record["object"].update(key=quote_plus(source["key"], safe="/"), eTag=source["etag"])
    record["object"].pop("versionId")
    if "version_id" in source:
        record["object"]["versionId"] = source["version_id"]

    sqs = session.target.client("sqs")
    for _ in range(2):  # S3 delivered it again, twice
        sqs.send_message(
            QueueUrl=session.state.outputs["IntakeQueueUrl"], MessageBody=json.dumps(notification)
        )
    deadline = time.monotonic() + WAIT_SECONDS
    while session.queue_depth("IntakeQueueUrl") or session.queue_depth("AssociationQueueUrl"):
        assert time.monotonic() < deadline
        time.sleep(0.5)

    assert len(session.documents()) == 1
    assert [r["state"] for r in session.status()] == ["associated"]


def test_files_service_rejects_tampered_expired_and_out_of_policy_forms(session: Session):
    headers = {"x-api-user": "portdocs@example.com", "x-api-token": "emulator-token"}

    def form() -> dict[str, Any]:
        answer = requests.post(
            f"{session.state.emulator_api_url}/files/upload_requests",
            json={"content_type": "application/pdf"},
            headers=headers,
            timeout=10,
        )
        assert answer.status_code == 201
        return answer.json()

    def post(
        fields: dict[str, str], url: str, last_field: tuple[str, str] | None = None
    ) -> requests.Response:
        parts = [(k, (None, v)) for k, v in fields.items()] + [
            ("file", ("a.pdf", LOA.read_bytes(), "application/pdf"))
        ]
        if last_field:
            parts.append((last_field[0], (None, last_field[1])))
        return requests.post(url, files=parts, timeout=10)

    genuine = form()
    assert post(genuine["form_fields"], genuine["url"]).status_code == 204

    tampered = form()
    answer = post({**tampered["form_fields"], "content-type": "text/html"}, tampered["url"])
    assert answer.status_code == 403 and "Policy Condition failed" in answer.text

    forged = form()
    answer = post({**forged["form_fields"], "x-amz-signature": "0" * 64}, forged["url"])
    assert answer.status_code == 403 and "SignatureDoesNotMatch" in answer.text

    extra = form()
    answer = post({**extra["form_fields"], "x-amz-meta-owner": "mallory"}, extra["url"])
    assert answer.status_code == 403 and "Extra input fields" in answer.text

    late = form()
    fields = dict(late["form_fields"])
    content_type = fields.pop("content-type")
    answer = post(fields, late["url"], last_field=("content-type", content_type))
    assert answer.status_code == 400 and "after the file" in answer.text

    session.admin("POST", "faults", {"endpoint": "upload_requests", "expire_forms": True, "times": 1})
    expired = form()
    answer = post(expired["form_fields"], expired["url"])
    assert answer.status_code == 403 and "Policy expired" in answer.text

    unauthenticated = requests.post(
        f"{session.state.emulator_api_url}/files/upload_requests",
        json={"content_type": "application/pdf"},
        timeout=10,
    )
    assert unauthenticated.status_code == 401


def test_demo_command_associates_both_samples_and_exits_zero():
    finished = subprocess.run(
        [sys.executable, "-m", "portdocs_sandbox.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        check=False,
    )

    assert finished.returncode == 0, finished.stdout + finished.stderr
    table = [line for line in finished.stdout.splitlines() if "associated" in line and "│" in line]
    assert len(table) == 2
    assert any("Letter of Authorization.pdf" in line and "loa" in line for line in table)
    assert any("losing-carrier-invoice.pdf" in line and "invoice" in line for line in table)
    assert "/loa/Letter of Authorization.pdf" in finished.stdout  # the draft flow's key
    assert "porting-orders/" in finished.stdout and "/invoice/losing-carrier-invoice.pdf" in finished.stdout
    assert "both documents associated" in finished.stdout and "porting order" in finished.stdout
    # The functions' own log lines go to their log streams (the folder it names), not to the demo's output.
    assert not [line for line in finished.stdout.splitlines() if line.startswith('{"level"')]


def test_at_debug_no_log_line_holds_a_credential_signature_policy_or_location(sandbox: RunningSandbox):
    """Last in this module: scans every log line the functions wrote during its tests, with the
    functions and the root logger at DEBUG (as Lambda sets them up for LogLevel DEBUG), every
    document event and every object's tags, for the real values: the credentials sent to Telnyx,
    every form's signature, policy and credential scope, and every object key the forms made (what
    each Location URL names)."""
    admin = f"{sandbox.state.emulator_api_url}/_emulator"
    calls = requests.get(f"{admin}/calls", timeout=10).json()["calls"]
    forms = requests.get(f"{admin}/forms", timeout=10).json()["forms"]
    assert calls and forms, "the module's tests ran no upload"
    secrets = {
        call["headers"][name].removeprefix("Bearer ")
        for call in calls
        for name in ("x-api-token", "authorization")
        if name in call["headers"]
    }
    for form in forms:
        secrets |= {form["x-amz-signature"], form["policy"], form["x-amz-credential"]}
        # direct-uploads/<uuid>/${filename}: in every Location of the form
        secrets.add(form["key"].split("/")[1])
    assert all(len(value) >= 12 for value in secrets)  # long enough not to match by chance

    lines = [line for log in sandbox.log_dir.glob("*.log") for line in log.read_text().splitlines()]
    # What else people and systems read: document events and every object's tags.
    target = cli.Target.from_sandbox(sandbox.state)
    lines += [json.dumps(event) for event in cli.document_events(target)]
    s3 = target.client("s3")
    bucket = sandbox.state.outputs["IntakeBucketName"]
    for version in s3.list_object_versions(Bucket=bucket).get("Versions", []):
        tags = s3.get_object_tagging(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])[
            "TagSet"
        ]
        lines.append(json.dumps(tags))
    assert any("DEBUG" in line for line in lines), "nothing was logged at DEBUG: the scan would prove nothing"
    # portdocs' own lines are among them: each function's logger writes to its log stream, not to
    # the sandbox's output, where this scan would not see them.
    assert any('"message":"document associated"' in line for line in lines)
    leaks = [(value[:12], line[:200]) for line in lines for value in secrets if value in line]
    assert leaks == []


def test_a_manifest_whose_header_looks_like_markup_is_named_as_written(session: Session, tmp_path: Path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,type,[/notes],[bold red]x\n")

    code, output = session.portdocs("bulk", str(manifest), "--dry-run")

    assert code == 2, output
    assert "unknown column(s) '[/notes]', '[bold red]x'" in output

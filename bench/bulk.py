"""`portdocs bulk` through the sandbox: documents per minute against the naive loop porting teams
run today (one drop, then a wait for that document to end), and what 1,000 documents cost on AWS
(arm64), priced from what the run itself measured.

The sandbox (moto server, the Telnyx emulator, each function in a worker process of its own with
its template MemorySize) gets --orders porting orders (default 300) and a manifest of --documents
rows (default 1,000): each order's LOA and invoice, then 'other' documents spread over the orders,
each file a one-page PDF of its own. Then, in one run:
- bulk: plan, send, wait, as `portdocs bulk` does; documents per minute from the first drop to the
  end of the last document. Every row must end attached exactly once (the order on the emulator
  holds it, one link and one upload to Telnyx's documents service per row), or the bench exits 1;
- the same manifest again: it must send nothing (every row "attached before");
- naive: --naive documents (default 20) to orders of their own, one at a time, each a one-row
  manifest planned, sent and waited for before the next;
- cost per 1,000 documents, from the bulk run's measures only: each function's invocations and
  wall time (the runtime's per-invocation accounting) at its MemorySize; the AWS requests, counted
  at moto server; the functions' log bytes and the document events log; the bytes sent to Telnyx.

Scheduled runs (the poller every 10 minutes, the sweeper every 15) are skipped: they cost per hour
and per followed order, not per document, and their requests would be counted with the documents'.

    make bench-bulk                                      # or: .venv/bin/python bench/bulk.py
    BENCH_BULK_DOCUMENTS=100 BENCH_BULK_ORDERS=30 .venv/bin/python bench/bulk.py    # a quick look
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

import boto3

from portdocs_sandbox import bulk
from portdocs_sandbox.pdf_objects import assemble
from portdocs_sandbox.runtime import IsolatedInvoker, LocalRuntime
from portdocs_sandbox.sandbox import Sandbox, SandboxState
from portdocs_sandbox.stack import load_template
from portdocs_sandbox.target import Target, console
from portdocs_sandbox.telnyx_emulator import TelnyxEmulator

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

PRICES_AS_OF = (
    "AWS list prices, us-east-1, as published when last checked in 2025 (DynamoDB's on-demand prices "
    "since the 2024-11-01 reduction); not re-checked from this machine, which has no network"
)
LAMBDA_ARM64_GB_SECOND = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1e6
SQS_REQUEST = 0.40 / 1e6
SQS_BILLED_CHUNK = 64 * 1024  # each 64 KB chunk of a payload is one request
DYNAMODB_WRU = 0.625 / 1e6
DYNAMODB_RRU = 0.125 / 1e6
S3_PUT_COPY_POST_LIST = 0.005 / 1000
S3_GET_HEAD = 0.0004 / 1000
S3_GB_MONTH = 0.023
EVENTBRIDGE_EVENT = 1.00 / 1e6
SECRETS_MANAGER_CALL = 0.05 / 10_000
LOGS_INGESTED_GB = 0.50
TRANSFER_OUT_GB = 0.09
GB = 1024**3
# Lambda gives a function one vCPU at 1,769 MB, less in proportion below (AWS's Lambda docs).
LAMBDA_MB_PER_VCPU = 1769
# The CLI signs with this access key (moto takes any): the request log tells its requests by it.
OPERATOR_ACCESS_KEY = "portdocs-bench-operator"
SIGNED_BY = re.compile(r"Credential=([^/,\s]+)/\d{8}/[^/]+/([^/]+)/aws4_request")
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"})
DYNAMODB_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem"})
# An empty ReceiveMessage answers "{}"; one message alone is a few hundred bytes.
EMPTY_RECEIVE_MAX_BYTES = 100
# Which function makes each Telnyx call (portdocs/flows/porting_order.py): the uploader reads the
# order and uploads; the associator sets the LOA or invoice, or reads the order's additional
# documents and links one, and asks after an upload older than Telnyx keeps an unlinked one.
ASSOCIATOR_CALLS = frozenset(
    {
        ("PATCH", "porting_orders"),
        ("GET", "additional_documents"),
        ("POST", "additional_documents"),
        ("GET", "documents"),
    }
)
# Longer than the event sources' batching window (2 s): work still under way when the last
# document's end is seen (its event, its last ledger write) is counted.
SETTLE_SECONDS = 5.0
LATENCY_STEP_SECONDS = 0.1


# -- the AWS requests, counted where they arrive ------------------------------------------------------


@dataclass
class AwsRequest:
    caller: str  # "stack": the functions and the runtime's pollers (Lambda's); "bulk": the CLI
    service: str
    action: str
    table: str = ""
    entries: int = 1  # PutEvents entries, a batch's items
    request_bytes: int = 0
    response_bytes: int = 0


class AwsRequestLog:
    """Every request that reaches moto server, by caller, service and action.

    Counted at the server, not by botocore hooks: the functions run in worker processes the
    runtime starts, where a hook would need code of its own, while the server sees the functions',
    the pollers' and the CLI's requests alike, each signed with the service it is for. The CLI
    signs with an access key of its own (OPERATOR_ACCESS_KEY): that tells its requests apart."""

    def __init__(self) -> None:
        self.requests: list[AwsRequest] = []

    def around(self, app: WSGIApplication) -> WSGIApplication:
        def counting(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            request = described(environ)
            self.requests.append(request)
            return _measured(app(environ, start_response), request)

        return counting


def described(environ: WSGIEnvironment) -> AwsRequest:
    """The request's caller, service and action; a JSON-protocol body (DynamoDB, SQS, EventBridge,
    Secrets Manager) is read for its table and entries, then handed on unchanged."""
    signed = SIGNED_BY.search(environ.get("HTTP_AUTHORIZATION") or unquote(environ.get("QUERY_STRING", "")))
    access_key, service = signed.groups() if signed else ("", "unsigned")
    caller = "bulk" if access_key == OPERATOR_ACCESS_KEY else "stack"
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if service == "s3":  # bodies are documents here: not read
        return AwsRequest(caller, service, _s3_action(environ), request_bytes=length)
    body = environ["wsgi.input"].read(length) if length else b""
    if body:
        environ["wsgi.input"] = io.BytesIO(body)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if not target:  # the query protocol (SNS)
        action = parse_qs(body.decode(errors="replace")).get("Action", ["?"])[0]
        return AwsRequest(caller, service, action, request_bytes=length)
    fields = json.loads(body or b"{}")
    batch = fields.get("RequestItems") or {}  # DynamoDB's batch reads and writes: priced per item
    return AwsRequest(
        caller,
        service,
        target.rsplit(".", 1)[-1],
        table=fields.get("TableName") or next(iter(batch), ""),
        entries=len(fields["Entries"]) if service == "events" else sum(map(len, batch.values())) or 1,
        request_bytes=length,
    )


def _s3_action(environ: WSGIEnvironment) -> str:
    """The method, what it names (botocore addresses moto path-style: /bucket/key) and the
    sub-resource: PUT object, GET object?tagging, GET bucket?list-type ..."""
    on = "object" if "/" in environ.get("PATH_INFO", "").strip("/") else "bucket"
    query = environ.get("QUERY_STRING", "")
    sub = query.split("&", 1)[0].split("=", 1)[0]
    return f"{environ['REQUEST_METHOD']} {on}" + (f"?{sub}" if sub else "")


def _measured(answer: Iterable[bytes], request: AwsRequest) -> Iterator[bytes]:
    try:
        for chunk in answer:
            request.response_bytes += len(chunk)
            yield chunk
    finally:
        close = getattr(answer, "close", None)
        if close is not None:
            close()


def s3_tier(action: str) -> str:
    """S3's request prices: PUT, COPY, POST and LIST one, GET, HEAD and the rest another; DELETE free."""
    method, on = action.split("?", 1)[0].split(" ")
    if method in ("PUT", "POST") or (method == "GET" and on == "bucket"):
        return "put"
    return "free" if method == "DELETE" else "get"


def sqs_billed(request: AwsRequest) -> int:
    return max(1, math.ceil(max(request.request_bytes, request.response_bytes) / SQS_BILLED_CHUNK))


def empty_receive(request: AwsRequest) -> bool:
    return request.action == "ReceiveMessage" and request.response_bytes <= EMPTY_RECEIVE_MAX_BYTES


# -- the documents: orders, files, manifest ----------------------------------------------------------


def one_page_pdf(lines: list[str]) -> bytes:
    """A one-page PDF of text in Helvetica, written object by object with a correct xref table (as
    tests/files.py writes them): pypdf and any viewer open it."""
    text = b" T* ".join(b"(%s) Tj" % line.encode("ascii") for line in lines)
    stream = b"BT /F1 11 Tf 15 TL 72 720 Td " + text + b" ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    return assemble(objects)


def document_pdf(number: int, order: str, document_type: str, rng: random.Random) -> bytes:
    title = {"loa": "Letter of Authorization", "invoice": "Carrier invoice"}.get(document_type, "Port notes")
    return one_page_pdf(
        [
            title,
            f"Porting order {order}",
            f"Document {number}, reference {rng.getrandbits(128):032x}",
            "The undersigned, authorized to act for the account holder, authorizes Telnyx",
            "to port the telephone numbers below from their current service provider.",
            "+1 312 555 0100, +1 312 555 0101",
            "Account holder: Porter McPortersen, 600 Congress Avenue, Austin, TX 78701",
            "Signed: Porter McPortersen II",
        ]
    )


def seeded_orders(emulator: TelnyxEmulator, rng: random.Random, count: int) -> list[str]:
    orders = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]
    for order in orders:
        emulator.seed_porting_order(order)
    return orders


def order_rows(orders: list[str], documents: int) -> list[tuple[str, str]]:
    """(order, type) per row: each order's LOA and invoice, then 'other' documents, round the orders."""
    if documents < 2 * len(orders):
        raise SystemExit(f"{documents} documents cannot give {len(orders)} orders an LOA and an invoice each")
    rows = [(order, kind) for order in orders for kind in ("loa", "invoice")]
    return rows + [(orders[n % len(orders)], "other") for n in range(documents - len(rows))]


def write_manifest(folder: Path, rows: list[tuple[str, str]], rng: random.Random) -> Path:
    """A PDF of its own per row, and the manifest naming them (files beside it)."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["file", "type", "porting_order", "port_request", "sub_request", "description"])
        for number, (order, kind) in enumerate(rows, start=1):
            name = f"doc-{number:05d}.pdf"
            (folder / name).write_bytes(document_pdf(number, order, kind, rng))
            writer.writerow([name, kind, order, "", "", ""])
    return manifest


# -- the runs --------------------------------------------------------------------------------------


def skip_scheduled_runs(runtime: LocalRuntime) -> list[str]:
    """The poller (every 10 minutes) and the sweeper (every 15) cost per hour and per followed
    order, not per document: their requests would be counted with the documents' and their CPU
    taken from the runs timed. A run that falls due is skipped, as with its schedule off, and named
    in the list returned. The runtime has no switch for it: its method is replaced."""
    skipped: list[str] = []

    def skip(function_logical_id: str) -> dict[str, Any]:
        skipped.append(function_logical_id)
        return {}

    runtime.invoke_scheduled = skip  # type: ignore[method-assign]
    return skipped


@dataclass(frozen=True)
class Mark:
    """Where each measure stood at one moment: what happened between two marks is a run's."""

    aws_requests: int
    invocations: int
    telnyx_calls: int
    log_bytes: dict[str, int]
    events_log_bytes: int


@dataclass(frozen=True)
class Window:
    """What the bulk run did, from its first drop until the pipeline was quiet again."""

    documents: int
    seconds: float
    invocations: list[tuple[str, float]]
    aws: list[AwsRequest]
    telnyx: list[dict[str, Any]]
    log_bytes: dict[str, int]
    events_log_bytes: int


def mark(sandbox: Sandbox, invoker: IsolatedInvoker, requests: AwsRequestLog, operator: Target) -> Mark:
    return Mark(
        len(requests.requests),
        len(invoker.durations),
        len(sandbox.emulator.calls()),
        {path.stem: path.stat().st_size for path in sandbox.log_dir.glob("*.log")},
        events_log_bytes(operator),
    )


def events_log_bytes(operator: Target) -> int:
    """The document events the stack's rule wrote to its log group (CloudWatch Logs ingests them)."""
    logs, size = operator.client("logs"), 0
    request: dict[str, Any] = {"logGroupName": operator.outputs["DocumentEventsLogGroupName"]}
    while True:
        page = logs.filter_log_events(**request)
        size += sum(len(event["message"].encode()) for event in page.get("events", []))
        if not page.get("nextToken"):
            return size
        request["nextToken"] = page["nextToken"]


def planned(operator: Target, manifest: Path, folder: Path) -> tuple[list[Any], bulk.Plan]:
    rows, found = bulk.plan(operator, manifest, folder, files_anywhere=False, shared_files=False)
    if found.problems:
        raise SystemExit("the manifest has problems: " + "; ".join(map(str, found.problems[:5])))
    return rows, found


def sent_and_waited(operator: Target, rows: list[Any], found: bulk.Plan) -> tuple[list[bulk.Outcome], float]:
    """The rows dropped and waited for; seconds from the first drop to the last end seen (the wait
    reads the ledger every bulk.POLL_SECONDS)."""
    started = time.monotonic()
    outcomes = bulk.send(operator, rows, found, retry_rejected=False)
    bulk.wait(operator, outcomes, bulk.DEFAULT_WAIT_SECONDS)
    return outcomes, time.monotonic() - started


def bulk_run(
    sandbox: Sandbox, requests: AwsRequestLog, operator: Target, manifest: Path
) -> tuple[list[bulk.Outcome], Window, float]:
    """The measured run; also returns the seconds its checks (plan) took before the first drop."""
    invoker = sandbox.runtime.invoker if sandbox.runtime else None
    assert isinstance(invoker, IsolatedInvoker)
    checking = time.monotonic()
    rows, found = planned(operator, manifest, manifest.parent / "fetched")
    checked_in = time.monotonic() - checking
    start = mark(sandbox, invoker, requests, operator)
    outcomes, seconds = sent_and_waited(operator, rows, found)
    time.sleep(SETTLE_SECONDS)
    end = mark(sandbox, invoker, requests, operator)
    window = Window(
        documents=len(outcomes),
        seconds=seconds,
        invocations=invoker.durations[start.invocations : end.invocations],
        aws=requests.requests[start.aws_requests : end.aws_requests],
        telnyx=sandbox.emulator.calls()[start.telnyx_calls : end.telnyx_calls],
        log_bytes={name: size - start.log_bytes.get(name, 0) for name, size in end.log_bytes.items()},
        events_log_bytes=end.events_log_bytes - start.events_log_bytes,
    )
    return outcomes, window, checked_in


def attached_once(emulator: TelnyxEmulator, outcomes: list[bulk.Outcome], window: Window) -> list[str]:
    """What is wrong with the bulk run's result, if anything: every row sent and attached, held by its
    order on the emulator, linked once, uploaded to the documents service once."""
    problems = [
        f"row {o.number}: {o.action}, {o.state} {o.reason}"
        for o in outcomes
        if not (o.attached and o.action is bulk.Action.SENT)
    ][:5]
    targets: list[Any] = [o.row.target for o in outcomes if o.row]
    orders = {target.porting_order_id for target in targets}
    held = {order: emulator.porting_order(order) for order in orders}
    for outcome in outcomes:
        if outcome.attached and not held_by_order(outcome, held):
            problems.append(f"row {outcome.number}: its order on the emulator does not hold it")
    links = [link for link in emulator.links() if link["porting_order_id"] in orders]
    uploads = [c for c in window.telnyx if c["endpoint"] == "documents" and c["method"] == "POST"]
    if len(links) != len(outcomes) or len({link["document_id"] for link in links}) != len(outcomes):
        problems.append(f"{len(links)} links to the orders for {len(outcomes)} rows")
    if len(uploads) != len(outcomes):
        problems.append(f"{len(uploads)} uploads to the documents service for {len(outcomes)} rows")
    return problems


def held_by_order(outcome: bulk.Outcome, held: dict[str, dict[str, Any]]) -> bool:
    assert outcome.row is not None and outcome.entry is not None
    target: Any = outcome.row.target
    order, telnyx_id = held[target.porting_order_id], outcome.entry.telnyx_document_id
    if target.is_order_document:
        return bool(order["documents"][str(target.document_type)] == telnyx_id)
    return any(
        d["document_id"] == telnyx_id and d["document_type"] == str(target.document_type)
        for d in order["additional_documents"]
    )


def run_again(
    requests: AwsRequestLog, emulator: TelnyxEmulator, operator: Target, manifest: Path
) -> tuple[Counter[str], int, int, float]:
    """The same manifest once more: the actions, the files dropped (S3 PUTs of the CLI), the uploads
    to Telnyx, and the seconds it took (its checks included)."""
    first_request, first_call, started = len(requests.requests), len(emulator.calls()), time.monotonic()
    rows, found = planned(operator, manifest, manifest.parent / "fetched-again")
    outcomes = bulk.send(operator, rows, found, retry_rejected=False)
    bulk.wait(operator, outcomes, bulk.DEFAULT_WAIT_SECONDS)
    seconds = time.monotonic() - started
    drops = [r for r in requests.requests[first_request:] if r.caller == "bulk" and r.action == "PUT object"]
    uploads = [c for c in emulator.calls()[first_call:] if c["endpoint"] == "documents"]
    return Counter(str(o.action) for o in outcomes), len(drops), len(uploads), seconds


@dataclass(frozen=True)
class NaiveRun:
    documents: int
    attached: int
    drop_to_end_seconds: float  # each document's drop and wait, summed
    loop_seconds: float  # the whole loop, each document's checks included


def naive_loop(emulator: TelnyxEmulator, operator: Target, folder: Path, count: int) -> NaiveRun:
    """One document at a time to orders of its own: a one-row manifest checked, dropped and waited
    for until it ends, then the next."""
    rng = random.Random(11)
    orders = seeded_orders(emulator, rng, math.ceil(count / 2))
    rows = [(order, kind) for order in orders for kind in ("loa", "invoice")][:count]
    attached, sending, started = 0, 0.0, time.monotonic()
    for number, row in enumerate(rows, start=1):
        manifest = write_manifest(folder / f"row-{number}", [row], rng)
        planned_rows, found = planned(operator, manifest, manifest.parent / "fetched")
        outcomes, seconds = sent_and_waited(operator, planned_rows, found)
        attached += sum(o.attached for o in outcomes)
        sending += seconds
    return NaiveRun(len(rows), attached, sending, time.monotonic() - started)


# -- the cost ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    component: str
    quantity: str  # per 1,000 documents
    cost: float  # per 1,000 documents


def item_sizes(operator: Target) -> dict[str, float]:
    """Each table's average item size in bytes, as DynamoDB counts it (names and values)."""
    dynamodb, sizes = operator.client("dynamodb"), {}
    for table in dynamodb.list_tables()["TableNames"]:
        items = [
            i for page in dynamodb.get_paginator("scan").paginate(TableName=table) for i in page["Items"]
        ]
        sizes[table] = sum(map(item_bytes, items)) / len(items) if items else 0.0
    return sizes


def item_bytes(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + value_bytes(value) for name, value in item.items())


def value_bytes(value: dict[str, Any]) -> int:
    """DynamoDB's item size rules: a string its UTF-8 bytes, a number 1 byte per 2 significant
    digits plus 1, a map or list 3 bytes plus 1 per element and its elements."""
    ((kind, inner),) = value.items()
    if kind == "M":
        return 3 + sum(len(name.encode()) + 1 + value_bytes(v) for name, v in inner.items())
    if kind == "L":
        return 3 + sum(1 + value_bytes(v) for v in inner)
    members = inner if kind in ("SS", "NS", "BS") else [inner]
    return sum(_scalar_bytes(kind[0], member) for member in members)


def _scalar_bytes(kind: str, member: Any) -> int:
    if kind == "S":
        return len(member.encode())
    if kind == "N":
        return (len(member.lstrip("-").replace(".", "").strip("0")) + 1) // 2 + 1
    return len(member) if kind == "B" else 1  # BOOL, NULL


def lambda_lines(window: Window, memory_mb: dict[str, int], scale: float) -> list[Line]:
    """Each function's billed duration (wall time per invocation, rounded up to the ms) at its
    MemorySize, and one line for the invocations of all."""
    billed: dict[str, float] = defaultdict(float)
    counted: Counter[str] = Counter()
    for function, seconds in window.invocations:
        billed[function] += math.ceil(seconds * 1000) / 1000
        counted[function] += 1
    lines = []
    for function in sorted(billed):
        gb_seconds = billed[function] * memory_mb[function] / 1024 * scale
        lines.append(
            Line(
                f"Lambda duration, {function}",
                f"{gb_seconds:,.1f} GB-s: {counted[function] * scale:,.0f} invocations, "
                f"{billed[function] * scale:,.1f} s billed at {memory_mb[function]} MB",
                gb_seconds * LAMBDA_ARM64_GB_SECOND,
            )
        )
    invocations = sum(counted.values()) * scale
    lines.append(Line("Lambda requests", f"{invocations:,.0f} invocations", invocations * LAMBDA_REQUEST))
    return lines


def by_caller(requests: list[AwsRequest], scale: float, unit: str = "requests") -> str:
    stack = sum(r.entries for r in requests if r.caller == "stack") * scale
    cli = sum(r.entries for r in requests if r.caller == "bulk") * scale
    return f"{stack + cli:,.0f} {unit} (stack {stack:,.0f}, portdocs bulk {cli:,.0f})"


def sqs_line(window: Window, scale: float) -> Line:
    made = [r for r in window.aws if r.service == "sqs" and not empty_receive(r)]
    billed = sum(map(sqs_billed, made)) * scale
    return Line("SQS requests", f"{billed:,.0f} billed: {by_caller(made, scale)}", billed * SQS_REQUEST)


def dynamodb_lines(window: Window, sizes: dict[str, float], scale: float) -> list[Line]:
    """A write 1 WRU per KB of its table's average item, a read 1 RRU per 4 KB (strongly consistent;
    an eventually consistent read costs half, a query returning several items more)."""
    lines = []
    for actions, unit, per_unit, price in (
        (DYNAMODB_WRITES, "WRU", 1024, DYNAMODB_WRU),
        (DYNAMODB_READS, "RRU", 4096, DYNAMODB_RRU),
    ):
        chosen = [r for r in window.aws if r.service == "dynamodb" and r.action in actions]
        units = sum(r.entries * max(1, math.ceil(sizes.get(r.table, 0) / per_unit)) for r in chosen) * scale
        kind = "writes" if unit == "WRU" else "reads"
        lines.append(
            Line(f"DynamoDB {kind}", f"{units:,.0f} {unit}: {by_caller(chosen, scale)}", units * price)
        )
    return lines


def s3_lines(window: Window, scale: float, days: int) -> list[Line]:
    requests = [r for r in window.aws if r.service == "s3"]
    put = [r for r in requests if s3_tier(r.action) == "put"]
    get = [r for r in requests if s3_tier(r.action) == "get"]
    stored = sum(r.request_bytes for r in put if r.caller == "bulk" and r.action == "PUT object") * scale
    gb_months = stored / GB * days / 30
    return [
        Line("S3 PUT, COPY, POST, LIST", by_caller(put, scale), len(put) * scale * S3_PUT_COPY_POST_LIST),
        Line("S3 GET, HEAD", by_caller(get, scale), len(get) * scale * S3_GET_HEAD),
        Line(
            "S3 storage (intake)",
            f"{stored / 2**20:,.2f} MiB for {days} days: {gb_months:.6f} GB-months",
            gb_months * S3_GB_MONTH,
        ),
    ]


def other_request_lines(window: Window, scale: float) -> list[Line]:
    events = [r for r in window.aws if r.service == "events" and r.action == "PutEvents"]
    secrets = [r for r in window.aws if r.service == "secretsmanager"]
    entries = sum(r.entries for r in events) * scale
    return [
        Line("EventBridge events", by_caller(events, scale, "entries"), entries * EVENTBRIDGE_EVENT),
        Line("Secrets Manager calls", by_caller(secrets, scale), len(secrets) * scale * SECRETS_MANAGER_CALL),
    ]


def bytes_lines(window: Window, scale: float) -> list[Line]:
    logs = sum(window.log_bytes.values()) * scale
    events = window.events_log_bytes * scale
    sent = sum(map(telnyx_request_bytes, window.telnyx)) * scale
    return [
        Line(
            "CloudWatch Logs ingestion",
            f"{(logs + events) / 2**20:,.2f} MiB (functions {logs / 2**20:,.2f}, document events "
            f"{events / 2**20:,.2f})",
            (logs + events) / GB * LOGS_INGESTED_GB,
        ),
        Line(
            "Data transfer out (to Telnyx)",
            f"{sent / 2**20:,.2f} MiB in {len(window.telnyx) * scale:,.0f} calls",
            sent / GB * TRANSFER_OUT_GB,
        ),
    ]


def retention_days() -> int:
    """How long an attached document stays in the intake bucket (template.yaml's default)."""
    return int(load_template()["Parameters"]["ProcessedDocumentRetentionDays"]["Default"])


def telnyx_request_bytes(call: dict[str, Any]) -> int:
    """A call's request line, headers and body as sent (TLS not counted)."""
    headers: dict[str, str] = call["headers"]
    request_line = f"{call['method']} {call['url']} HTTP/1.1\r\n"
    header_lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    return len(request_line) + len(header_lines) + int(headers.get("content-length") or 0)


def cost_lines(window: Window, sizes: dict[str, float], memory_mb: dict[str, int]) -> list[Line]:
    scale = 1000 / window.documents
    retention = retention_days()
    return [
        *lambda_lines(window, memory_mb, scale),
        sqs_line(window, scale),
        *dynamodb_lines(window, sizes, scale),
        *s3_lines(window, scale, retention),
        *other_request_lines(window, scale),
        *bytes_lines(window, scale),
    ]


# -- telling a person ----------------------------------------------------------------------------------


def print_cost(lines: list[Line]) -> None:
    total = sum(line.cost for line in lines)
    width = max(len(line.component) for line in lines)
    quantity_width = max(len(line.quantity) for line in lines)
    print(f"{'component':<{width}}  {'measured per 1,000 documents':<{quantity_width}}  {'cost':>10}  share")
    for line in lines:
        print(
            f"{line.component:<{width}}  {line.quantity:<{quantity_width}}  "
            f"{dollars(line.cost):>10}  {line.cost / total:6.1%}"
        )
    print(f"{'total':<{width}}  {'':<{quantity_width}}  {dollars(total):>10}")
    top = max(lines, key=lambda line: line.cost)
    print(f"dominant: {top.component}, {top.cost / total:.0%} of the total")


def dollars(amount: float) -> str:
    return f"${amount:.6f}"


def print_breakdown(window: Window, sizes: dict[str, float]) -> None:
    """The AWS requests of the bulk run by service and action, and what the DynamoDB units assume."""
    scale = 1000 / window.documents
    counted = Counter((r.service, r.action, r.caller) for r in window.aws if not empty_receive(r))
    print("AWS requests per 1,000 documents, by service and action (stack + portdocs bulk):")
    for service in sorted({r.service for r in window.aws} - {"logs"}):
        actions = sorted({a for s, a, _ in counted if s == service})
        parts = [
            f"{action} {counted[service, action, 'stack'] * scale:,.0f}"
            + (
                f"+{counted[service, action, 'bulk'] * scale:,.0f}"
                if counted[service, action, "bulk"]
                else ""
            )
            for action in actions
        ]
        print(f"  {service}: " + ", ".join(parts))
    empty = sum(empty_receive(r) for r in window.aws)
    print(
        f"  left out: {empty:,} empty ReceiveMessage of the local pollers (1 s long polls, all "
        "queues); Lambda's own pollers long-poll 20 s, a cost per hour, not per document"
    )
    print(
        "DynamoDB: on-demand units assumed 1 WRU a write per KB, 1 RRU a read per 4 KB (strongly "
        "consistent) of the table's average item, measured at the end: "
        + ", ".join(f"{table} {size:,.0f} B" for table, size in sorted(sizes.items()))
    )
    indexes = load_template()["Resources"]["DocumentsTable"]["Properties"]["GlobalSecondaryIndexes"]
    print(
        "  not counted: writes to the ledger's global secondary indexes (a write that changes an item's "
        f"index key writes the index too, the old entry out and the new in; the ledger has {len(indexes)})"
    )


def print_telnyx(window: Window, memory_mb: dict[str, int], record_concurrency: int) -> None:
    """How real Telnyx latency would grow the Lambda part: the emulator answers on loopback."""
    per_document = Counter(
        "AssociatorFunction" if (c["method"], c["endpoint"]) in ASSOCIATOR_CALLS else "UploaderFunction"
        for c in window.telnyx
    )
    invocations = Counter(function for function, _ in window.invocations)
    batch = {function: window.documents / max(1, invocations[function]) for function in per_document}
    serial = overlapped = 0.0
    for function, made in per_document.items():
        added = made * LATENCY_STEP_SECONDS * memory_mb[function] / 1024 * 1000 / window.documents
        serial += added
        overlapped += added / min(record_concurrency, batch[function])
    kinds = Counter(f"{c['method']} {c['endpoint']}" for c in window.telnyx)
    print(
        f"Telnyx: {len(window.telnyx) / window.documents:.2f} API calls a document ("
        + ", ".join(f"{name} {count / window.documents:.2f}" for name, count in sorted(kinds.items()))
        + f"); the emulator answers on loopback. Each {LATENCY_STEP_SECONDS * 1000:.0f} ms of Telnyx "
        f"latency per call adds {overlapped:.1f} GB-s ({dollars(overlapped * LAMBDA_ARM64_GB_SECOND)}) per "
        f"1,000 documents with a batch's records in flight together (RecordConcurrency {record_concurrency}; "
        + ", ".join(
            f"{function} {size:.1f} records an invocation" for function, size in sorted(batch.items())
        )
        + f"), {serial:.1f} GB-s ({dollars(serial * LAMBDA_ARM64_GB_SECOND)}) if every call waited alone"
    )


def print_notes(window: Window, memory_mb: dict[str, int], skipped: list[str], pdf_bytes: float) -> None:
    sizes = sorted({memory_mb[function] for function, _ in window.invocations}, reverse=True)
    print(
        f"durations are this machine's ({os.cpu_count()} cores), cold starts included (Lambda bills the "
        "init phase since 2025-08-01); Lambda gives "
        + ", ".join(f"{mb} MB {mb / LAMBDA_MB_PER_VCPU:.2f} of a vCPU" for mb in sizes)
        + ", so CPU-bound work (the uploader's file check) runs longer there"
    )
    print(
        "not measured here: Lambda's START/END/REPORT log lines (the runtime writes none), the "
        "secrets' monthly fee, the logs' storage"
    )
    scanned, months = 500 * 1024, retention_days() / 30
    print(
        f"documents are {pdf_bytes:,.0f} bytes each: at {scanned // 1024} KB (a scanned page) transfer "
        f"out would cost ${scanned * 1000 / GB * TRANSFER_OUT_GB:.4f} and S3 storage for "
        f"{retention_days()} days ${scanned * 1000 / GB * months * S3_GB_MONTH:.4f} per 1,000 documents"
    )
    if skipped:
        print("scheduled runs skipped: " + ", ".join(f"{f} {n}" for f, n in Counter(skipped).items()))


def rate(documents: int, seconds: float) -> float:
    return documents / seconds * 60 if seconds else 0.0


def print_workload(rows: list[tuple[str, str]], orders: int, pdf_bytes: float) -> None:
    kinds = Counter(kind for _, kind in rows)
    print(
        f"bulk: {len(rows):,} documents to {orders:,} porting orders ("
        + ", ".join(f"{count:,} {kind}" for kind, count in sorted(kinds.items()))
        + f"), one-page PDFs of {pdf_bytes:,.0f} bytes on average",
        flush=True,
    )


def print_bulk(window: Window, checked_in: float, problems: list[str]) -> None:
    print(
        f"  checked in {checked_in:.1f} s (files, orders on Telnyx, the ledger), then dropped and ended in "
        f"{window.seconds:.1f} s: {rate(window.documents, window.seconds):.1f} documents a minute from "
        f"the first drop to the last end ({rate(window.documents, checked_in + window.seconds):.1f} "
        "with the checks)"
    )
    attached = (
        f"every row attached exactly once: each order holds its documents on the emulator, "
        f"{window.documents:,} links, {window.documents:,} uploads to the documents service"
    )
    print("  " + ("; ".join(problems) if problems else attached), flush=True)


def again_problems(actions: Counter[str], drops: int, uploads: int, seconds: float) -> list[str]:
    print(
        f"same manifest again: {sum(actions.values()):,} rows: "
        + ", ".join(f"{count:,} {action}" for action, count in sorted(actions.items()))
        + f"; {drops} files dropped, {uploads} calls to Telnyx's documents service ({seconds:.1f} s, "
        "its checks included)"
    )
    if set(actions) == {str(bulk.Action.ATTACHED_BEFORE)} and not drops and not uploads:
        return []
    return ["the same manifest again sent something"]


def naive_problems(naive: NaiveRun, window: Window, checked_in: float) -> list[str]:
    print(
        f"naive, one drop then a wait for its end: {naive.attached} of {naive.documents} documents attached "
        f"in {naive.drop_to_end_seconds:.1f} s of drops and waits: "
        f"{rate(naive.documents, naive.drop_to_end_seconds):.1f} documents a minute "
        f"({rate(naive.documents, naive.loop_seconds):.1f} with each one's checks: "
        f"{naive.loop_seconds:.1f} s)"
    )
    drop_to_end = rate(window.documents, window.seconds) / rate(naive.documents, naive.drop_to_end_seconds)
    with_checks = rate(window.documents, checked_in + window.seconds) / rate(
        naive.documents, naive.loop_seconds
    )
    print(f"bulk / naive: {drop_to_end:.1f}x from drop to end ({with_checks:.1f}x with the checks)")
    return [] if naive.attached == naive.documents else ["a naive document was not attached"]


def operator_target(state: SandboxState) -> Target:
    """The sandbox's target for the CLI, signing with an access key of its own."""
    session = boto3.session.Session(
        aws_access_key_id=OPERATOR_ACCESS_KEY, aws_secret_access_key="bench", region_name=state.region
    )
    return replace(Target.from_sandbox(state), session=session)


def bench(sandbox: Sandbox, folder: Path, args: argparse.Namespace) -> int:
    assert sandbox.state is not None and sandbox.runtime is not None
    requests = AwsRequestLog()
    sandbox.wrap_aws(requests.around)
    skipped = skip_scheduled_runs(sandbox.runtime)
    operator = operator_target(sandbox.state)
    rng = random.Random(7)
    rows = order_rows(seeded_orders(sandbox.emulator, rng, args.orders), args.documents)
    manifest = write_manifest(folder / "bulk", rows, rng)
    pdfs = list(manifest.parent.glob("*.pdf"))
    pdf_bytes = sum(p.stat().st_size for p in pdfs) / len(pdfs)
    print_workload(rows, args.orders, pdf_bytes)
    outcomes, window, checked_in = bulk_run(sandbox, requests, operator, manifest)
    problems = attached_once(sandbox.emulator, outcomes, window)
    print_bulk(window, checked_in, problems)
    problems += again_problems(*run_again(requests, sandbox.emulator, operator, manifest))
    naive = naive_loop(sandbox.emulator, operator, folder / "naive", args.naive)
    problems += naive_problems(naive, window, checked_in)
    functions = sandbox.runtime.stack.functions
    memory_mb = {logical_id: function.memory_mb for logical_id, function in functions.items()}
    sizes = item_sizes(operator)
    print(f"\ncost per 1,000 documents on AWS (arm64), from the bulk run's measures\n{PRICES_AS_OF}")
    print_cost(cost_lines(window, sizes, memory_mb))
    print_telnyx(window, memory_mb, int(functions["UploaderFunction"].environment["RECORD_CONCURRENCY"]))
    print_breakdown(window, sizes)
    print_notes(window, memory_mb, skipped, pdf_bytes)
    return 1 if problems else 0


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    for name, default in (("documents", 1000), ("orders", 300), ("naive", 20)):
        variable = f"BENCH_BULK_{name.upper()}"
        parser.add_argument(
            f"--{name}",
            type=int,
            default=int(os.environ.get(variable, default)),
            help=f"default {default}, or {variable}",
        )
    return parser.parse_args()


def main() -> int:
    args = arguments()
    # bulk's progress bars, in a terminal; elsewhere all rich would leave of them is blank lines.
    console.quiet = not console.is_terminal
    with (
        tempfile.TemporaryDirectory(prefix="portdocs-bench-bulk-") as folder,
        Sandbox(log_dir=Path(folder, "logs")) as sandbox,
    ):
        return bench(sandbox, Path(folder), args)


if __name__ == "__main__":
    sys.exit(main())

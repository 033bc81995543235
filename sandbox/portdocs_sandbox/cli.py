"""`portdocs`: the operator CLI, for the local sandbox and for a deployed stack alike.

    portdocs demo                       run the whole pipeline locally on the sample LOA and invoice
    portdocs sandbox                    start the sandbox and keep it running
    portdocs drop PATH... --port-request ID --sub-request ID --type loa|csr|invoice|other
    portdocs status [--port-request ID] [--watch] [--json]
    portdocs orders [--needs-action] [--json]   the porting orders followed, and what Telnyx said
    portdocs bulk MANIFEST [--dry-run] [--retry-rejected] [--report PATH]   many documents, one manifest
    portdocs send --port-request ID --sub-request ID --type TYPE --url URL [--description TEXT]
    portdocs redrive [--queue intake|association|all]
    portdocs retry DOCUMENT_ID...       put rejected, superseded or failed documents through again

Every command but demo and sandbox targets the running sandbox, or a deployed stack with
--stack-name NAME (names resolved from the CloudFormation stack's Outputs).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeAlias

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from rich.live import Live
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from portdocs.documents import (
    DocumentType,
    DraftTarget,
    PortingOrderTarget,
    State,
    file_name_of,
)
from portdocs.documents import Target as DocumentTarget
from portdocs.errors import PermanentError, PortdocsError
from portdocs.formats import FORMATS_BY_TYPE
from portdocs.ledger import LedgerEntry
from portdocs.orders import OrderRecord, current_documents, document_type_of, needs_action
from portdocs.porting_status import OrderStatus, ReviewStatus
from portdocs.shapes import ASSOCIATION_REQUEST_SCHEMA, validate
from portdocs.timestamps import parse_utc_iso
from portdocs_sandbox import bulk, ledger_admin
from portdocs_sandbox.preflight import check_before_drop, flow_of
from portdocs_sandbox.retry import retry_document
from portdocs_sandbox.sandbox import (
    DEFAULT_LOG_DIR,
    DEFAULT_STATE_FILE,
    DEMO_PORT_REQUEST,
    DEMO_PORTING_ORDER,
    DEMO_SUB_REQUESTS,
    Sandbox,
)
from portdocs_sandbox.stack import PROJECT_ROOT
from portdocs_sandbox.target import CliError, Target, console, errors, resolve_target

__all__ = ["CliError", "Target", "main", "retry_document"]

SAMPLES = PROJECT_ROOT / "samples"
# One document through each flow: the draft port request's, and the porting order's (Telnyx's current API).
DEMO_DOCUMENTS = (
    ("Letter of Authorization.pdf", DraftTarget(DEMO_PORT_REQUEST, DEMO_SUB_REQUESTS[0], DocumentType.LOA)),
    ("losing-carrier-invoice.pdf", PortingOrderTarget(DEMO_PORTING_ORDER, DocumentType.INVOICE)),
)
DEMO_TIMEOUT_SECONDS = 120
QUEUES = {"intake": "Intake", "association": "Association"}


# -- operations, shared by the commands and the demo -----------------------------------------------------


def files_under(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
        elif path.is_file():
            found.append(path)
        else:
            raise CliError(f"{path} does not exist")
    if not found:
        raise CliError("no files to drop")
    return found


def document_target(args: argparse.Namespace) -> DocumentTarget:
    """A draft sub-request (--port-request and --sub-request) or a porting order (--porting-order)."""
    draft_given = args.port_request is not None or args.sub_request is not None
    if draft_given == (args.porting_order is not None):
        raise CliError(
            "name either a draft sub-request (--port-request and --sub-request) or --porting-order"
        )
    try:
        if args.porting_order is not None:
            return PortingOrderTarget(args.porting_order, DocumentType.parse(args.type))
        if args.port_request is None or args.sub_request is None:
            raise CliError("a draft sub-request takes both --port-request and --sub-request")
        return DraftTarget(args.port_request, args.sub_request, DocumentType.parse(args.type))
    except PermanentError as error:
        raise CliError(str(error)) from None


def drop_documents(
    target: Target, paths: Sequence[Path], destination: DocumentTarget, description: str | None
) -> list[str]:
    """Checks every file as the uploader will, then puts them under the intake key layout."""
    if description is not None and not description.isascii():
        raise CliError(
            "--description must be ASCII (S3 object metadata); send an upload request message instead"
        )
    files = files_under(paths)
    problems, content_types = [], {}
    for file in files:
        try:
            content_types[file] = check_before_drop(file, target, destination)
        except PortdocsError as error:  # refused, or the checker itself could not run
            problems.append(f"{file}: {error}")
    if problems:
        raise CliError("refusing to drop anything:\n  " + "\n  ".join(problems))
    s3, bucket = target.client("s3"), target.outputs["IntakeBucketName"]
    keys = []
    with Progress(console=console, disable=len(files) < 2, transient=True) as progress:
        task = progress.add_task("dropping", total=len(files))
        for file in files:
            key = destination.intake_key(file.name)
            extra: dict[str, Any] = {"ContentType": content_types[file]}
            if description:
                extra["Metadata"] = {"description": description}
            s3.upload_file(str(file), bucket, key, ExtraArgs=extra)
            keys.append(key)
            progress.advance(task)
    return keys


def status_table(entries: list[LedgerEntry]) -> Table:
    table = Table(title="portdocs documents", title_justify="left")
    columns = ("document", "target", "type", "state", "review", "telnyx document id", "reason / last error")
    for column in (*columns, "age"):
        table.add_column(column, overflow="fold")
    colours = {
        "associated": "green",
        "rejected": "red",
        "failed": "yellow",
        "superseded": "blue",
        "withdrawn": "blue",
    }
    for entry in entries:
        state = entry.state
        # A person has to look at these on Telnyx's portal (docs/troubleshooting.md).
        check = " [bold magenta](check: possible duplicate)[/]" if entry.possible_duplicate else ""
        if entry.possibly_attached and state is not State.ASSOCIATED:
            check = " [bold magenta](check: possibly attached)[/]"
        # What came from outside (file names, Telnyx's words) is shown as written, never as markup.
        table.add_row(
            Text((file_name_of(entry.source.key) if entry.source else "") or entry.document_id),
            entry.target.short_name if entry.target else "",
            _type_cell(entry),
            f"[{colours.get(state, 'white')}]{state}[/]{check}",
            _review_cell(entry),
            entry.telnyx_document_id or "",
            Text(entry.reason or (entry.last_error or "" if state is not State.ASSOCIATED else "")),
            _age(entry.created_at),
        )
    return table


REVIEW_COLOURS: dict[str, str] = {
    ReviewStatus.PENDING: "yellow",
    ReviewStatus.VERIFIED: "green",
    ReviewStatus.DENIED: "red",
}


def _type_cell(entry: LedgerEntry) -> str:
    """The document type, and what portdocs made of the file when it converted it for Telnyx."""
    if entry.target is None:
        return ""
    if not entry.converted_from:
        return str(entry.target.document_type)
    was, made = (_format_name(entry.converted_from), _format_name(entry.content_type or "?"))
    return f"{entry.target.document_type} ({was} → {made})"


def _format_name(content_type: str) -> str:
    known = FORMATS_BY_TYPE.get(content_type)
    return known.name if known else content_type


def _review_cell(entry: LedgerEntry) -> Text:
    """Telnyx's review of an attached porting-order document ("pending" until one is read), with
    its reason; blank for a draft's document or one never attached, which Telnyx does not review."""
    review = entry.review_status
    if review is None and entry.state is State.ASSOCIATED and isinstance(entry.target, PortingOrderTarget):
        review = ReviewStatus.PENDING
    if review is None:
        return Text("")
    cell = Text(review, style=REVIEW_COLOURS.get(review, ""))
    if entry.review_reason:
        cell.append(f" ({entry.review_reason})")
    return cell


def _age(timestamp: str) -> str:
    if not timestamp:
        return ""
    seconds = int(time.time() - parse_utc_iso(timestamp))
    return (
        f"{seconds}s" if seconds < 120 else f"{seconds // 60}m" if seconds < 7200 else f"{seconds // 3600}h"
    )


# -- porting orders (docs/orders.md) ----------------------------------------------------------------------

STATUS_COLOURS: dict[str, str] = {
    OrderStatus.EXCEPTION: "red",
    OrderStatus.FOC_DATE_CONFIRMED: "green",
    OrderStatus.PORTED: "green",
    OrderStatus.CANCEL_PENDING: "blue",
    OrderStatus.CANCELLED: "blue",
}
# The first line of the latest comment, cut to this; `--json` has all of it.
COMMENT_SHOWN = 60


@dataclass(frozen=True)
class OrderView:
    """One porting order as `portdocs orders` shows it: its record, its current documents."""

    order: OrderRecord
    documents: tuple[LedgerEntry, ...]
    needs_action: bool

    def as_json(self) -> dict[str, Any]:
        """Every field of the record, whether it needs action, and each current document's review
        (review_status null: not read from Telnyx yet)."""
        documents = [
            {
                "document_id": entry.document_id,
                "document_type": str(kind) if (kind := document_type_of(entry)) else None,
                "file": file_name_of(entry.source.key) if entry.source else None,
                "telnyx_document_id": entry.telnyx_document_id,
                "review_status": entry.review_status,
                "review_reason": entry.review_reason,
                "reviewed_at": entry.reviewed_at,
            }
            for entry in self.documents
        ]
        return {**asdict(self.order), "needs_action": self.needs_action, "documents": documents}


def order_views(target: Target) -> list[OrderView]:
    """Every porting order the stack follows, the first seen first, with its current documents (one
    query of the ledger's by-porting-order index each)."""
    ledger = target.table()
    views = []
    for order in ledger_admin.porting_orders(target.orders_table()):
        entries = ledger_admin.entries(ledger, porting_order_id=order.porting_order_id)
        documents = current_documents(entries)
        views.append(OrderView(order, tuple(documents), needs_action(order, documents)))
    return views


def orders_table(views: list[OrderView]) -> Table:
    """Telnyx's text (codes, comments, reasons, references) is shown as written, never as markup."""
    table = Table(title="portdocs porting orders", title_justify="left")
    columns = ("order", "customer reference", "status", "documents", "unmet requirements", "latest comment")
    for column in (*columns, "age"):
        table.add_column(column, overflow="fold")
    for view in views:
        order = view.order
        table.add_row(
            Text(f"{order.porting_order_id[:8]}…"),
            Text(order.customer_reference or ""),
            _status_cell(view),
            _documents_cell(view.documents),
            Text("\n".join(order.unmet_requirements)),
            _comment_cell(order),
            # Since Telnyx last changed its status: updated_at moves with every poll of the order.
            _age(order.status_at or order.first_seen_at),
        )
    return table


def _status_cell(view: OrderView) -> Text:
    status = view.order.status or "not yet known"
    cell = Text(status, style=STATUS_COLOURS.get(status, ""))
    if view.order.details:
        cell.append(" (" + ", ".join(detail.code for detail in view.order.details) + ")")
    if view.needs_action:
        cell.append(" needs action", style="bold magenta")
    return cell


def _documents_cell(documents: tuple[LedgerEntry, ...]) -> Text:
    """One line per current document: its type and Telnyx's review ("pending" until one is read)."""
    lines = []
    for entry in documents:
        review = entry.review_status or ReviewStatus.PENDING
        line = Text(f"{document_type_of(entry) or 'document'} ")
        line.append(review, style=REVIEW_COLOURS.get(review, ""))
        if entry.review_reason:
            line.append(f" ({entry.review_reason})")
        lines.append(line)
    return Text("\n").join(lines)


def _comment_cell(order: OrderRecord) -> Text:
    lines = (order.comment or "").strip().splitlines()
    if not lines:
        return Text("")
    first = lines[0] if len(lines[0]) <= COMMENT_SHOWN else lines[0][: COMMENT_SHOWN - 1] + "…"
    return Text(f"{order.comment_by or 'unknown'}: {first}")


def send_association(
    target: Target,
    destination: DocumentTarget,
    description: str,
    url: str | None,
    telnyx_document_id: str | None,
) -> str:
    """`url` for a draft (the files service's Location), `telnyx_document_id` for a porting order."""
    uploaded = {"url": url} if url is not None else {"telnyx_document_id": telnyx_document_id}
    message = {**destination.as_message(), "description": description, **uploaded}
    try:
        validate(message, ASSOCIATION_REQUEST_SCHEMA)
    except PermanentError as error:
        raise CliError(str(error)) from None
    sqs = target.client("sqs")
    return sqs.send_message(QueueUrl=target.outputs["AssociationQueueUrl"], MessageBody=json.dumps(message))[
        "MessageId"
    ]


def redrive(target: Target, queue: str) -> int:
    """Moves every message of a dead-letter queue back to its source queue.

    A receive/send/delete loop rather than SQS's StartMessageMoveTask: it behaves the same on
    AWS and on moto, and finishes before the command returns, so the count it prints is final.
    """
    sqs = target.client("sqs")
    name = QUEUES[queue]
    source, dead_letter = target.outputs[f"{name}QueueUrl"], target.outputs[f"{name}DeadLetterQueueUrl"]
    moved = 0
    while messages := sqs.receive_message(
        QueueUrl=dead_letter, MaxNumberOfMessages=10, WaitTimeSeconds=1
    ).get("Messages", []):
        entries = [{"Id": str(i), "MessageBody": m["Body"]} for i, m in enumerate(messages)]
        sent = sqs.send_message_batch(QueueUrl=source, Entries=entries)
        if sent.get("Failed"):
            raise CliError(
                f"could not move {len(sent['Failed'])} message(s) back to {queue}; they stay in the DLQ"
            )
        sqs.delete_message_batch(
            QueueUrl=dead_letter,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
        moved += len(messages)
    return moved


# -- commands -----------------------------------------------------------------------------------------------


def command_drop(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    keys = drop_documents(target, [Path(p) for p in args.paths], document_target(args), args.description)
    for key in keys:
        console.print(f"dropped s3://{target.outputs['IntakeBucketName']}/{key}")
    return 0


def command_status(args: argparse.Namespace) -> int:
    target = resolve_target(args)

    table = target.table()
    if args.json:
        rows = ledger_admin.ledger_rows(table, args.port_request, args.porting_order)
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0

    def current() -> Table:
        return status_table(ledger_admin.entries(table, args.port_request, args.porting_order))

    if not args.watch:
        console.print(current())
        return 0
    with Live(current(), console=console, refresh_per_second=2) as live:
        while True:
            time.sleep(2)
            live.update(current())


def command_orders(args: argparse.Namespace) -> int:
    views = order_views(resolve_target(args))
    if args.needs_action:
        views = [view for view in views if view.needs_action]
    if args.json:
        print(json.dumps([view.as_json() for view in views], indent=2, ensure_ascii=False))
        return 0
    if not views:
        console.print("no porting order needs action" if args.needs_action else "no porting order followed")
        return 0
    console.print(orders_table(views))
    return 0


def document_events(
    target: Target, port_request: str | None = None, porting_order: str | None = None
) -> list[dict[str, Any]]:
    """The events the stack put on its bus (documents' and porting orders'), oldest first, as its
    rule logged them."""
    logs = target.client("logs")
    events: list[dict[str, Any]] = []
    request: dict[str, Any] = {"logGroupName": target.outputs["DocumentEventsLogGroupName"]}
    while True:
        page = logs.filter_log_events(**request)
        events.extend(json.loads(entry["message"]) for entry in page.get("events", []))
        if not page.get("nextToken"):
            break
        request["nextToken"] = page["nextToken"]
    for name, wanted in (("draft_port_request_id", port_request), ("porting_order_id", porting_order)):
        if wanted:
            events = [e for e in events if _names(e["detail"], name, wanted)]
    return sorted(events, key=lambda event: str(event["detail"]["occurred_at"]))


def _names(detail: dict[str, Any], name: str, wanted: str) -> bool:
    # A document event names its target; a porting order's event (docs/orders.md) names the order.
    return bool(detail.get("target", {}).get(name) == wanted or detail.get(name) == wanted)


def command_events(args: argparse.Namespace) -> int:
    events = document_events(resolve_target(args), args.port_request, args.porting_order)
    if args.json:
        print(json.dumps(events, indent=2, ensure_ascii=False))
        return 0
    console.print(events_table(events))
    return 0


def events_table(events: list[dict[str, Any]]) -> Table:
    table = Table("when", "event", "document or order", "reason / Telnyx id")
    for event in events:
        detail = event["detail"]
        table.add_row(
            detail["occurred_at"],
            event["detail-type"],
            Text(_event_subject(detail)),
            Text(_event_note(detail)),
        )
    return table


def _event_subject(detail: dict[str, Any]) -> str:
    if "source" in detail:
        return str(detail["source"]["key"])
    document = detail.get("document") or {}
    return str(detail.get("document_id") or document.get("document_id") or detail["porting_order_id"])


def _event_note(detail: dict[str, Any]) -> str:
    """A document event's reason or Telnyx id; a porting order event's why, review reason, split or
    status."""
    document = detail.get("document") or {}
    return str(
        detail.get("reason")
        or detail.get("why")
        or document.get("review_reason")
        or (f"split from {detail['split_from']}" if "split_from" in detail else "")
        or detail.get("telnyx_document_id")
        or document.get("telnyx_document_id")
        or detail.get("status", "")
    )


# The option that gives the upload an association request names, by its message field.
UPLOAD_OPTIONS = {"url": "--url", "telnyx_document_id": "--document-id"}


def command_send(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    destination = document_target(args)
    wanted = UPLOAD_OPTIONS[flow_of(destination).UPLOAD_FIELD]
    given = args.document_id if wanted == "--document-id" else args.url
    if given is None or (args.url is not None and args.document_id is not None):
        raise CliError(f"this target takes {wanted} (a draft: --url; a porting order: --document-id)")
    message_id = send_association(target, destination, args.description, args.url, args.document_id)
    console.print(f"sent association request {message_id}")
    return 0


def command_redrive(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    for queue in QUEUES if args.queue == "all" else [args.queue]:
        console.print(
            f"moved {redrive(target, queue)} message(s) from the {queue} dead-letter queue back to its queue"
        )
    return 0


def command_sandbox(args: argparse.Namespace) -> int:
    sandbox = Sandbox(
        log_dir=Path(args.log_dir), retry_after_seconds=args.retry_after, log_level=args.log_level
    )
    state = sandbox.start()
    state_file = Path(args.state_file)
    state.write(state_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print("[bold]portdocs sandbox is running[/] (Ctrl-C to stop)")
    console.print(f"  AWS (moto server):      {state.endpoint_url}")
    console.print(f"  Telnyx API emulator:    {state.emulator_api_url}")
    console.print(f"  Telnyx files service:   {state.emulator_files_url}")
    console.print(f"  intake bucket:          {state.outputs['IntakeBucketName']}")
    console.print(
        f"  seeded draft port request {DEMO_PORT_REQUEST} with sub-requests {', '.join(DEMO_SUB_REQUESTS)}"
    )
    console.print(f"  seeded porting order {DEMO_PORTING_ORDER}")
    console.print(f"  state file:             {state_file}")
    console.print(f"  function logs:          {args.log_dir}/<Function>.log")
    console.print("To point the AWS CLI or boto3 at it:")
    console.print(
        f"  export AWS_ENDPOINT_URL={state.endpoint_url} AWS_ACCESS_KEY_ID=sandbox"
        f" AWS_SECRET_ACCESS_KEY=sandbox AWS_DEFAULT_REGION={state.region}"
    )
    console.print("Try:")
    console.print(
        f"  portdocs drop 'samples/Letter of Authorization.pdf' --port-request {DEMO_PORT_REQUEST}"
        f" --sub-request {DEMO_SUB_REQUESTS[0]} --type loa"
    )
    console.print(
        "  portdocs drop samples/losing-carrier-invoice.pdf "
        f"--porting-order {DEMO_PORTING_ORDER} --type invoice"
    )
    console.print("  portdocs status --watch")
    sys.stdout.flush()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        state_file.unlink(missing_ok=True)
        sandbox.stop()
    return 0


def command_demo(args: argparse.Namespace) -> int:
    started = time.monotonic()
    console.print("starting the sandbox: moto server, Telnyx emulator, local Lambda runtime ...")
    log_dir = Path(tempfile.mkdtemp(prefix="portdocs-demo-logs-"))
    with Sandbox(log_dir=log_dir, retry_after_seconds=2) as sandbox:
        assert sandbox.state is not None
        target = Target.from_sandbox(sandbox.state)
        for file_name, destination in DEMO_DOCUMENTS:
            (key,) = drop_documents(target, [SAMPLES / file_name], destination, None)
            console.print(f"dropped s3://{target.outputs['IntakeBucketName']}/{key}")
        entries = _wait_for_terminal_states(target, len(DEMO_DOCUMENTS))
        if all(e.state is State.ASSOCIATED for e in entries):
            entries = _telnyx_reviews_the_invoice(sandbox, target, entries)
        console.print(status_table(entries))
        console.print(orders_table(order_views(target)))
    console.print(f"function logs (JSON, as CloudWatch Logs would hold them): {log_dir}")
    return _demo_outcome(entries, time.monotonic() - started)


def _telnyx_reviews_the_invoice(
    sandbox: Sandbox, target: Target, entries: list[LedgerEntry]
) -> list[LedgerEntry]:
    """As Telnyx's porting team does: the order moves on (a signed webhook reaches the receiver)
    and the invoice is verified; the poller, run now rather than in 10 minutes, reads the review."""
    (invoice,) = [e for e in entries if isinstance(e.target, PortingOrderTarget)]
    assert invoice.telnyx_document_id is not None
    console.print("Telnyx (the emulator) moves the order to in-process and verifies the invoice ...")
    sandbox.emulator.set_order_status(DEMO_PORTING_ORDER, "in-process")
    sandbox.emulator.review_document(invoice.telnyx_document_id, "verified")
    assert sandbox.runtime is not None
    sandbox.runtime.invoke_scheduled("PollerFunction")
    deadline = time.monotonic() + DEMO_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        entries = ledger_admin.entries(target.table())
        if any(e.review_status == ReviewStatus.VERIFIED for e in entries):
            break
        time.sleep(0.5)
    return entries


def _demo_outcome(entries: list[LedgerEntry], elapsed: float) -> int:
    associated = [e for e in entries if e.state is State.ASSOCIATED]
    verified = [e for e in associated if e.review_status == ReviewStatus.VERIFIED]
    if len(associated) == len(DEMO_DOCUMENTS) and verified:
        console.print(
            f"[green]both documents associated in {elapsed:.1f}s: the LOA with draft port request"
            f" {DEMO_PORT_REQUEST}, the invoice with porting order {DEMO_PORTING_ORDER},"
            " and Telnyx's review of the invoice read back: verified[/]"
        )
        return 0
    problems = [
        f"{e.document_id}: {e.state} {e.reason or e.last_error or ''}" for e in entries if e not in associated
    ]
    if associated and not verified:
        problems.append("the invoice's review was not read back from Telnyx")
    errors.print(
        "[red]demo failed:[/] "
        + ("; ".join(problems) or f"documents did not arrive within {DEMO_TIMEOUT_SECONDS}s")
    )
    return 1


def _wait_for_terminal_states(target: Target, expected: int) -> list[LedgerEntry]:
    deadline = time.monotonic() + DEMO_TIMEOUT_SECONDS
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("uploading and associating", total=expected)
        while True:
            entries = ledger_admin.entries(target.table())
            finished = [e for e in entries if e.state in (State.ASSOCIATED, State.REJECTED)]
            progress.update(task, completed=len(finished))
            if len(finished) >= expected or time.monotonic() > deadline:
                return entries
            time.sleep(0.5)


def command_retry(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    for document_id in args.document_ids:
        console.print(retry_document(target, document_id), markup=False)
    return 0


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(prog="portdocs", description=__doc__.split("\n\n")[0])
    commands = main_parser.add_subparsers(dest="command", required=True)
    _add_local_commands(commands)
    _add_sending_commands(commands)
    _add_looking_commands(commands)
    _add_repair_commands(commands)
    return main_parser


Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _with_state_file(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
    command.add_argument(
        "--state-file",
        default=os.environ.get("PORTDOCS_SANDBOX_STATE", str(DEFAULT_STATE_FILE)),
        help=argparse.SUPPRESS,
    )
    return command


def _with_target(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
    command.add_argument("--stack-name", help="a deployed stack (default: the running sandbox)")
    command.add_argument("--region", help="the deployed stack's region (default: boto3's)")
    command.add_argument(
        "--as",
        dest="principal",
        metavar="ROLE_ARN",
        help="in the sandbox: the IAM role to act as, held to the queues' policies "
        "(default: its operator role)",
    )
    return _with_state_file(command)


def _with_document_target(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
    command.add_argument("--port-request", metavar="ID", help="a draft port request id (with --sub-request)")
    command.add_argument("--sub-request", metavar="ID", help="a draft sub-request id")
    command.add_argument("--porting-order", metavar="ID", help="a porting order id (Telnyx's current API)")
    command.add_argument("--type", required=True, metavar="loa|csr|invoice|other")
    return _with_target(command)


def _add_local_commands(commands: Commands) -> None:
    demo = commands.add_parser("demo", help="run the pipeline locally on the sample LOA and invoice")
    demo.set_defaults(handler=command_demo)
    sandbox = _with_state_file(
        commands.add_parser("sandbox", help="start the local sandbox and keep it running")
    )
    sandbox.add_argument(
        "--retry-after",
        type=int,
        default=2,
        metavar="SECONDS",
        help="how soon a failed message returns (AWS: the visibility timeout)",
    )
    sandbox.add_argument("--log-dir", default=str(DEFAULT_LOG_DIR), help="where the functions' logs go")
    sandbox.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARN", "ERROR"],
        help="the functions' log level (the template's LogLevel parameter)",
    )
    sandbox.set_defaults(handler=command_sandbox)


def _add_sending_commands(commands: Commands) -> None:
    drop = _with_document_target(
        commands.add_parser("drop", help="put files into the intake bucket under the right key")
    )
    drop.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    drop.add_argument("--description", help="becomes the description on Telnyx (default: the file name)")
    drop.set_defaults(handler=command_drop)
    bulk.add_command(
        _with_target(
            commands.add_parser(
                "bulk", help="many documents to many targets, from a CSV or JSON Lines manifest"
            )
        )
    )
    send = _with_document_target(
        commands.add_parser("send", help="send an association request, as an upstream system would")
    )
    send.add_argument("--url", help="a draft's file: the files-service Location of an uploaded file")
    send.add_argument("--document-id", help="a porting order's file: the id POST /v2/documents answered")
    send.add_argument("--description", default="")
    send.set_defaults(handler=command_send)


def _add_looking_commands(commands: Commands) -> None:
    status = _with_target(commands.add_parser("status", help="the documents ledger"))
    status.add_argument("--port-request", metavar="ID")
    status.add_argument("--porting-order", metavar="ID")
    status.add_argument("--watch", action="store_true", help="refresh every 2 seconds")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=command_status)
    orders = _with_target(
        commands.add_parser("orders", help="the porting orders followed: status, reviews, comments")
    )
    orders.add_argument(
        "--needs-action",
        action="store_true",
        help="only orders waiting for a person (exception, a denied document, a staff comment)",
    )
    orders.add_argument("--json", action="store_true", help="every field, and each document's review")
    orders.set_defaults(handler=command_orders)
    events = _with_target(commands.add_parser("events", help="the document events the stack published"))
    events.add_argument("--port-request", metavar="ID")
    events.add_argument("--porting-order", metavar="ID")
    events.add_argument("--json", action="store_true", help="the events as EventBridge delivered them")
    events.set_defaults(handler=command_events)


def _add_repair_commands(commands: Commands) -> None:
    redrive_parser = _with_target(
        commands.add_parser("redrive", help="move dead-letter messages back to their queue")
    )
    redrive_parser.add_argument("--queue", choices=[*QUEUES, "all"], default="all")
    redrive_parser.set_defaults(handler=command_redrive)
    retry = _with_target(
        commands.add_parser(
            "retry", help="put rejected, superseded or failed documents through the pipeline again"
        )
    )
    retry.add_argument(
        "document_ids", nargs="+", metavar="DOCUMENT_ID", help="as `portdocs status --json` shows"
    )
    retry.set_defaults(handler=command_retry)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except CliError as error:
        errors.print(f"portdocs {args.command}: {error}", markup=False)  # may quote a file or Telnyx
        return 2
    except EndpointConnectionError as error:
        hint = "" if getattr(args, "stack_name", None) else " (is `portdocs sandbox` still running?)"
        errors.print(f"portdocs {args.command}: cannot reach {error.kwargs.get('endpoint_url', 'AWS')}{hint}")
        return 1
    except (BotoCoreError, ClientError) as error:
        errors.print(f"portdocs {args.command}: {error}", markup=False)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`portdocs bulk MANIFEST`: many documents to many targets from one manifest (docs/bulk.md).

Every row is checked before anything is sent: its file (portdocs.file_check, as the uploader
will), its porting order (portdocs.order_check, as the uploader will), and the rows against each
other. What was sent before is found in the ledger by the file's sha256 and target, so a run of
the same manifest again sends only what has not been attached. The files are dropped into the
intake bucket: the pipeline does the work, the CLI never uploads to Telnyx itself."""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import json
import math
import os
import stat
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from portdocs.documents import DraftTarget, PortingOrderTarget, SourceObject, State, check_size
from portdocs.documents import Target as DocumentTarget
from portdocs.errors import PermanentError, PortdocsError
from portdocs.ledger import LedgerEntry
from portdocs_sandbox import ledger_admin
from portdocs_sandbox.manifest import ManifestError, Problem, Row, read_manifest
from portdocs_sandbox.preflight import check_before_drop, flow_of
from portdocs_sandbox.retry import retry_document
from portdocs_sandbox.target import CliError, Target, console, resolve_target

# How long a run waits for its documents to end; a row still open then is reported as open.
DEFAULT_WAIT_SECONDS = 30 * 60
POLL_SECONDS = 2.0
# Porting orders asked about at once (Telnyx's rate limit is the account's: a few, not hundreds).
ORDER_READERS = 8
REPORT_FIELDS = (
    "row",
    "file",
    "target",
    "document_type",
    "action",
    "document_id",
    "state",
    "reason",
    "telnyx_document_id",
    "review_status",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
DRAFTS_NOT_CHECKED = (
    "draft port requests are not checked on Telnyx: its legacy API offers no way to read one. A wrong "
    "id is refused when the document is attached, and the file stays on Telnyx's files service."
)


class Action(StrEnum):
    """What this run did with a row."""

    SENT = "sent"
    RETRIED = "sent again"  # --retry-rejected
    ATTACHED_BEFORE = "attached before"
    REJECTED_BEFORE = "rejected before"
    IN_PROGRESS = "in progress before"
    INVALID = "not sent"


@dataclass(frozen=True)
class CheckedRow:
    """A row whose file passed the checks: the bytes checked are the bytes that will be sent."""

    row: Row
    file: Path
    sha256: str
    # As sniffed by the checks; None for a row sent before, which is not checked again.
    content_type: str | None = None

    @property
    def key(self) -> str:
        return self.row.target.intake_key(self.row.file.name)


@dataclass
class Outcome:
    """One row's line of the report. `row` is None for a row the manifest could not describe."""

    number: int
    row: Row | None
    action: Action
    entry: LedgerEntry | None = None
    reason: str = ""
    # Where this run dropped the row's file: its ledger document is found by it.
    dropped: SourceObject | None = None
    # A row the manifest could not describe: its file as written there.
    file: str = ""

    @property
    def state(self) -> str:
        if self.entry is not None:
            return str(self.entry.state)
        return "invalid" if self.action is Action.INVALID else "not seen yet"

    @property
    def attached(self) -> bool:
        return self.entry is not None and self.entry.state is State.ASSOCIATED

    @property
    def waiting(self) -> bool:
        """Sent (now or before) and not ended yet."""
        return self.action not in (Action.INVALID, Action.ATTACHED_BEFORE, Action.REJECTED_BEFORE) and (
            self.entry is None or not self.entry.state.is_terminal
        )

    def as_report(self) -> dict[str, str]:
        entry, row = self.entry, self.row
        return {
            "row": str(self.number),
            "file": str(row.file) if row else self.file,
            "target": _target_name(row.target) if row else "",
            "document_type": str(row.target.document_type) if row else "",
            "action": str(self.action),
            "document_id": entry.document_id if entry else "",
            "state": self.state,
            "reason": self.reason or ((entry.reason or entry.last_error or "") if entry else ""),
            "telnyx_document_id": (entry.telnyx_document_id or "") if entry else "",
            "review_status": (entry.review_status or "") if entry else "",
        }


@dataclass
class Plan:
    """What a run found before sending anything."""

    checked: list[CheckedRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    before: dict[int, LedgerEntry] = field(default_factory=dict)  # row number -> what it was

    def invalid(self) -> dict[int, str]:
        reasons: dict[int, list[str]] = defaultdict(list)
        for problem in self.problems:
            if problem.row is not None:
                reasons[problem.row].append(problem.message)
        return {row: "; ".join(messages) for row, messages in reasons.items()}


def plan(
    target: Target, manifest: Path, folder: Path, files_anywhere: bool, shared_files: bool
) -> tuple[list[Row], Plan]:
    """Every row checked, nothing sent. CliError when the manifest or Telnyx cannot be read."""
    try:
        rows, problems = read_manifest(manifest, files_anywhere)
    except ManifestError as error:
        raise CliError(f"{manifest}: {error}") from None
    found = Plan(problems=problems)
    located = _located(target, rows, folder, found.problems)
    found.before = sent_before(target, located)
    # Attached, or on its way: what was checked when it was sent is not checked again.
    settled = {n for n, entry in found.before.items() if entry.state is not State.REJECTED}
    found.problems += repeated_files(located, shared_files)
    checked = _check_files(target, [c for c in located if c.row.number not in settled], found.problems)
    found.problems += _closed_orders(target, checked, found.notes)
    invalid = found.invalid()
    found.checked = [
        c
        for c in sorted([*checked, *(c for c in located if c.row.number in settled)], key=_number)
        if c.row.number not in invalid
    ]
    found.before = {n: entry for n, entry in found.before.items() if n not in invalid}
    return rows, found


def _number(item: CheckedRow) -> int:
    return item.row.number


# -- each row's file ------------------------------------------------------------------------------------


def _located(target: Target, rows: list[Row], folder: Path, problems: list[Problem]) -> list[CheckedRow]:
    """Each row's file found (an S3 one fetched into `folder`) and its sha256 taken: not checked yet."""
    located = []
    for row in rows:
        try:
            local = _local_copy(target, row, folder)
            located.append(CheckedRow(row, local, _sha256(local)))
        except PortdocsError as error:
            problems.append(Problem(row.number, str(error)))
        except OSError as error:
            problems.append(Problem(row.number, f"{row.file}: {error.strerror}"))
    return located


def _check_files(target: Target, located: list[CheckedRow], problems: list[Problem]) -> list[CheckedRow]:
    """Each file checked as the uploader will check it; a file sent to several targets of one flow
    is checked once."""
    checked, verdicts = [], {}
    with Progress(console=console, transient=True, disable=len(located) < 2) as progress:
        task = progress.add_task("checking files", total=len(located))
        for item in located:
            progress.advance(task)
            key = (item.sha256, item.row.file.name, flow_of(item.row.target))
            if key not in verdicts:
                verdicts[key] = _verdict(item.file, target, item.row.target)
            verdict = verdicts[key]
            if isinstance(verdict, PortdocsError):  # refused, or the checker itself could not run
                problems.append(Problem(item.row.number, str(verdict)))
            else:
                checked.append(replace(item, content_type=verdict))
    return checked


def _verdict(file: Path, target: Target, destination: DocumentTarget) -> str | PortdocsError:
    try:
        return check_before_drop(file, target, destination)
    except PortdocsError as error:
        return error


def _local_copy(target: Target, row: Row, folder: Path) -> Path:
    if row.file.path is not None:
        return row.file.path
    s3 = target.client("s3")
    copy = folder / f"row-{row.number}" / row.file.name
    copy.parent.mkdir(parents=True)
    try:
        head = s3.head_object(Bucket=row.file.bucket, Key=row.file.key)
        check_size(int(head["ContentLength"]), target.max_document_bytes)
        s3.download_file(row.file.bucket, row.file.key, str(copy))
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise PermanentError(f"cannot read {row.file}: {code}") from None
    except (BotoCoreError, OSError) as error:
        raise PermanentError(f"cannot read {row.file}: {error}") from None
    return copy


def _sha256(path: Path) -> str:
    return hashlib.sha256(_read_regular_file(path)).hexdigest()


def _read_regular_file(path: Path) -> bytes:
    """The file's bytes, if it is still a regular file: not followed if it became a symlink since
    it was found, and never waited on if it became a pipe."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise PermanentError(f"{path}: not a regular file")
        return file.read()


# -- the rows against each other --------------------------------------------------------------------------


def repeated_files(checked: list[CheckedRow], shared_files: bool) -> list[Problem]:
    """A row repeating another (same bytes, same target) is not sent twice; one file for two targets
    is a file pasted into the wrong row more often than not (an LOA names its numbers), unless the
    operator says it is shared (one carrier invoice for several orders); two files for one place
    (one intake key, or an order's one LOA or invoice) leave it to chance which one stays."""
    problems = []
    for rows in _grouped(checked, lambda c: c.sha256).values():
        first: dict[DocumentTarget, int] = {}
        for item in rows:
            if item.row.target in first:
                problems.append(Problem(item.row.number, f"repeats row {first[item.row.target]}"))
            else:
                first[item.row.target] = item.row.number
        if len(first) > 1 and not shared_files:
            numbers = sorted(first.values())
            problems += [
                Problem(
                    n,
                    f"the same file as row(s) {_others(numbers, n)}, for another target "
                    "(--allow-shared-files allows it)",
                )
                for n in numbers
            ]
    for key, rows in _grouped(checked, lambda c: c.key).items():
        problems += _two_files(rows, f"both would be dropped as {key}: rename one")
    for slot, rows in _grouped([c for c in checked if _is_order_document(c.row.target)], _target_of).items():
        problems += _two_files(
            rows, f"{_target_name(slot)} has one {slot.document_type}: keep one of these rows"
        )
    return problems


def _two_files(rows: list[CheckedRow], why: str) -> list[Problem]:
    if len({c.sha256 for c in rows}) < 2:
        return []
    numbers = ", ".join(str(c.row.number) for c in rows)
    return [Problem(c.row.number, f"two files for one place (rows {numbers}): {why}") for c in rows]


def _is_order_document(target: DocumentTarget) -> bool:
    return isinstance(target, PortingOrderTarget) and target.is_order_document


def _target_of(item: CheckedRow) -> DocumentTarget:
    return item.row.target


def _target_name(target: DocumentTarget) -> str:
    if isinstance(target, PortingOrderTarget):
        return f"porting order {target.porting_order_id}"
    assert isinstance(target, DraftTarget)
    return f"draft {target.draft_port_request_id}/{target.draft_sub_request_id}"


def _grouped(items: Iterable[CheckedRow], by: Callable[[CheckedRow], Any]) -> dict[Any, list[CheckedRow]]:
    groups: dict[Any, list[CheckedRow]] = defaultdict(list)
    for item in items:
        groups[by(item)].append(item)
    return groups


def _others(numbers: list[int], number: int) -> str:
    return ", ".join(str(n) for n in numbers if n != number)


# -- the targets, on Telnyx -------------------------------------------------------------------------------


def _closed_orders(target: Target, checked: list[CheckedRow], notes: list[str]) -> list[Problem]:
    """Each porting order asked about once, as the uploader asks (portdocs.order_check)."""
    if any(isinstance(c.row.target, DraftTarget) for c in checked):
        notes.append(DRAFTS_NOT_CHECKED)
    orders = sorted(
        {c.row.target.porting_order_id for c in checked if isinstance(c.row.target, PortingOrderTarget)}
    )
    if not orders:
        return []
    check = order_check(target)
    try:
        with ThreadPoolExecutor(ORDER_READERS) as readers:
            refusals = dict(
                zip(orders, readers.map(lambda o: check.refusal(o, _deadline()), orders), strict=True)
            )
    except PortdocsError as error:  # Telnyx unreachable, or the credentials refused
        raise CliError(f"cannot ask Telnyx about the porting orders: {error}") from None
    return [
        Problem(c.row.number, refusal)
        for c in checked
        if isinstance(c.row.target, PortingOrderTarget)
        and (refusal := refusals[c.row.target.porting_order_id]) is not None
    ]


def order_check(target: Target) -> Any:
    """The uploader's own check of an order, with the stack's Telnyx credentials (its secret: the
    operator needs secretsmanager:GetSecretValue on it)."""
    from portdocs.order_check import OrderCheck
    from portdocs.telnyx_credentials import SecretCredentials
    from portdocs.telnyx_http import TelnyxHttp
    from portdocs.telnyx_porting import PortingApi

    secret = target.outputs.get("CredentialsSecretArn")
    if not secret:
        raise CliError("this stack names no Telnyx credentials secret (no CredentialsSecretArn output)")
    credentials = SecretCredentials(secret, lambda: target.client("secretsmanager"))
    return OrderCheck(PortingApi(TelnyxHttp(target.telnyx_api_base_url, credentials)))


def _deadline() -> Any:
    from portdocs.retrying import Deadline

    return Deadline(time.monotonic() + 60)


# -- what the ledger says was sent before ---------------------------------------------------------------


def sent_before(target: Target, checked: list[CheckedRow]) -> dict[int, LedgerEntry]:
    """For each row, the ledger's document of the same bytes for the same target, if any: the one
    attached, else one still open, else the last rejected (superseded and withdrawn ones are
    history: the row is sent again)."""
    rank = {State.ASSOCIATED: 3, State.RECEIVED: 2, State.UPLOADED: 2, State.FAILED: 2, State.REJECTED: 1}
    found = {}
    for (document_target, sha256), rows in _grouped(checked, lambda c: (c.row.target, c.sha256)).items():
        matching = [
            e
            for e in _entries_of(target, document_target)
            if e.target == document_target and e.received_sha256 == sha256 and e.state in rank
        ]
        if matching:
            best = max(matching, key=lambda e: (rank[e.state], e.created_at))
            found.update({c.row.number: best for c in rows})
    return found


def _entries_of(target: Target, document_target: DocumentTarget) -> list[LedgerEntry]:
    if isinstance(document_target, PortingOrderTarget):
        return ledger_admin.entries(target.table(), porting_order_id=document_target.porting_order_id)
    assert isinstance(document_target, DraftTarget)
    return ledger_admin.entries(target.table(), draft_port_request_id=document_target.draft_port_request_id)


# -- sending and waiting ----------------------------------------------------------------------------------


def send(target: Target, rows: list[Row], found: Plan, retry_rejected: bool) -> list[Outcome]:
    """Every row's outcome so far: invalid rows not sent, rows sent before left as they are (or
    a rejected one sent again, if asked), the rest dropped into the intake bucket."""
    described = {row.number: row for row in rows}
    named = {problem.row: problem.file for problem in found.problems if problem.file}
    outcomes = {
        number: Outcome(
            number, described.get(number), Action.INVALID, reason=reason, file=named.get(number, "")
        )
        for number, reason in found.invalid().items()
    }
    fresh = []
    for item in found.checked:
        before = found.before.get(item.row.number)
        if before is None:
            fresh.append(item)
        else:
            outcomes[item.row.number] = _outcome_before(target, item.row, before, retry_rejected)
    outcomes.update({o.number: o for o in _drop(target, fresh, retry_rejected)})
    return [outcomes[number] for number in sorted(outcomes)]


def _outcome_before(target: Target, row: Row, before: LedgerEntry, retry_rejected: bool) -> Outcome:
    if before.state is State.ASSOCIATED:
        return Outcome(row.number, row, Action.ATTACHED_BEFORE, before)
    if before.state is not State.REJECTED:
        return Outcome(row.number, row, Action.IN_PROGRESS, before)
    if not retry_rejected:
        reason = f"{before.reason} (not sent again: --retry-rejected sends it)"
        return Outcome(row.number, row, Action.REJECTED_BEFORE, before, reason=reason)
    try:
        said = retry_document(target, before.document_id)
    except CliError as error:
        return Outcome(row.number, row, Action.REJECTED_BEFORE, before, reason=str(error))
    if "sent again" not in said:  # not reopened: someone else's retry, or it moved on meanwhile
        return Outcome(row.number, row, Action.REJECTED_BEFORE, before, reason=said)
    return Outcome(row.number, row, Action.RETRIED, ledger_admin.entry(target.table(), before.document_id))


def _drop(target: Target, items: list[CheckedRow], retry_rejected: bool) -> list[Outcome]:
    """Each row's file put into the intake bucket, unless the key already holds these bytes (a run
    stopped before it could wait, or one still going): that drop is waited for, not doubled. A row
    that cannot be dropped is reported with the reason; the others go on."""
    s3, bucket = target.client("s3"), target.outputs["IntakeBucketName"]
    outcomes = []
    with Progress(console=console, transient=True, disable=len(items) < 2) as progress:
        task = progress.add_task("dropping into the intake bucket", total=len(items))
        for item in items:
            progress.advance(task)
            try:
                outcomes.append(_drop_one(target, s3, bucket, item, retry_rejected))
            except (OSError, BotoCoreError, ClientError, PortdocsError) as error:
                reason = f"could not be dropped: {error}"
                outcomes.append(Outcome(item.row.number, item.row, Action.INVALID, reason=reason))
    return outcomes


def _drop_one(target: Target, s3: Any, bucket: str, item: CheckedRow, retry_rejected: bool) -> Outcome:
    row = item.row
    there = _object_at(s3, bucket, item.key)
    if there is not None and there.get("Metadata", {}).get("sha256") == item.sha256:
        dropped = SourceObject(bucket, item.key, there.get("VersionId"), there.get("ETag"))
        entry = _entry_of_drop(dropped, _entries_of(target, row.target))
        if entry is not None:
            return _outcome_before(target, row, entry, retry_rejected)
        return Outcome(row.number, row, Action.IN_PROGRESS, dropped=dropped)
    body = _read_regular_file(item.file)  # held to the sha256 it was checked with
    digest = hashlib.sha256(body)
    if digest.hexdigest() != item.sha256:
        return Outcome(
            row.number, row, Action.INVALID, reason=f"{row.file} changed after it was checked: run again"
        )
    assert item.content_type is not None, "a row to send was checked"
    metadata = {"sha256": item.sha256, **({"description": row.description} if row.description else {})}
    put = s3.put_object(
        Bucket=bucket,
        Key=item.key,
        Body=body,
        ContentType=item.content_type,
        Metadata=metadata,
        ChecksumSHA256=base64.b64encode(digest.digest()).decode(),  # verified by S3 on arrival
    )
    return Outcome(
        row.number,
        row,
        Action.SENT,
        dropped=SourceObject(bucket, item.key, put.get("VersionId"), put.get("ETag")),
    )


def _object_at(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return dict(s3.head_object(Bucket=bucket, Key=key))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def wait(target: Target, outcomes: list[Outcome], seconds: float) -> None:
    """Until every row sent (now or before) has ended, or `seconds` have passed: each round reads
    the ledger once per target with rows still open, through its index."""
    deadline = time.monotonic() + seconds
    waiting = [o for o in outcomes if o.waiting]
    with Progress(console=console, transient=True, disable=not waiting) as progress:
        task = progress.add_task("waiting for the documents to end", total=len(waiting))
        while waiting:
            for document_target, group in _grouped_outcomes(waiting).items():
                _refresh(group, _entries_of(target, document_target))
            waiting = [o for o in waiting if o.waiting]
            progress.update(
                task, completed=len([o for o in outcomes if o.action is not Action.INVALID]) - len(waiting)
            )
            if not waiting or time.monotonic() > deadline:
                return
            time.sleep(POLL_SECONDS)


def _grouped_outcomes(outcomes: list[Outcome]) -> dict[DocumentTarget, list[Outcome]]:
    groups: dict[DocumentTarget, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        assert outcome.row is not None
        groups[outcome.row.target].append(outcome)
    return groups


def _refresh(outcomes: list[Outcome], entries: list[LedgerEntry]) -> None:
    by_id = {e.document_id: e for e in entries}
    for outcome in outcomes:
        if outcome.entry is not None:
            outcome.entry = by_id.get(outcome.entry.document_id, outcome.entry)
        elif outcome.dropped is not None:
            outcome.entry = _entry_of_drop(outcome.dropped, entries)


def _entry_of_drop(dropped: SourceObject, entries: list[LedgerEntry]) -> LedgerEntry | None:
    """The document the pipeline made of a drop: the same key and version (S3's events name it),
    or the same ETag where the events name none (moto's)."""
    etag = (dropped.etag or "").strip('"')
    mine = [
        e
        for e in entries
        if e.source is not None
        and e.source.key == dropped.key
        and (
            e.source.version_id == dropped.version_id
            if e.source.version_id
            else (e.source.etag or "").strip('"') == etag
        )
    ]
    return max(mine, key=lambda e: e.created_at) if mine else None


# -- telling a person ---------------------------------------------------------------------------------


def summary_table(outcomes: list[Outcome]) -> Table:
    table = Table(title="portdocs bulk", title_justify="left")
    for column in (
        "row",
        "file",
        "target",
        "type",
        "action",
        "state",
        "review",
        "reason / telnyx document id",
    ):
        table.add_column(column, overflow="fold")
    for outcome in outcomes:
        line = outcome.as_report()
        where = outcome.row.target.short_name if outcome.row else ""
        colour = (
            "green" if outcome.attached else "red" if line["state"] in ("rejected", "invalid") else "yellow"
        )
        table.add_row(
            line["row"],
            Text(Path(line["file"]).name if line["file"] else ""),
            Text(where),
            line["document_type"],
            line["action"],
            f"[{colour}]{line['state']}[/]",
            Text(line["review_status"]),
            Text(line["reason"] or line["telnyx_document_id"]),
        )
    return table


def counts(outcomes: list[Outcome]) -> str:
    attached = sum(o.attached for o in outcomes)
    by_state: dict[str, int] = defaultdict(int)
    for outcome in outcomes:
        if not outcome.attached:
            by_state[outcome.state] += 1
    rest = "".join(f", {count} {state}" for state, count in sorted(by_state.items()))
    return f"{len(outcomes)} rows: {attached} attached{rest}"


def write_report(path: Path, outcomes: list[Outcome]) -> None:
    lines = [o.as_report() for o in outcomes]
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(lines, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=REPORT_FIELDS)
        writer.writeheader()
        writer.writerows({name: _inert(value) for name, value in line.items()} for line in lines)


def _inert(cell: str) -> str:
    """A cell a spreadsheet would run as a formula (a file name or Telnyx's text beginning with =,
    +, - or @) is written with a leading apostrophe, which spreadsheets show as text (OWASP's
    advice on CSV injection)."""
    return f"'{cell}" if cell.lstrip(" ").startswith(FORMULA_STARTS) else cell


def report_path(manifest: Path, given: str | None) -> Path:
    path = Path(given) if given else manifest.with_name(f"{manifest.stem}.report.csv")
    if path.suffix.lower() not in (".csv", ".json"):
        raise CliError(f"--report {given}: name it .csv or .json")
    if path.resolve() == manifest.resolve():
        raise CliError(f"--report {given}: that is the manifest")
    if not os.access(path.parent, os.W_OK):  # found now, not after a wait of half an hour
        raise CliError(f"cannot write the report in {path.parent}")
    return path


def print_plan(found: Plan, rows: int) -> None:
    for note in found.notes:
        console.print(f"note: {note}", markup=False)
    for problem in sorted(found.problems, key=lambda p: (p.row or 0, p.message)):
        console.print(str(problem), markup=False)
    before: dict[str, int] = defaultdict(int)
    for entry in found.before.values():
        before[str(entry.state)] += 1
    known = "".join(f", {count} sent before and {state}" for state, count in sorted(before.items()))
    console.print(
        f"{rows} rows checked: {len(found.invalid())} with a problem, "
        f"{len(found.checked) - len(found.before)} to send{known}",
        markup=False,
    )


def command_bulk(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    manifest = Path(args.manifest)
    report = report_path(manifest, args.report)
    with tempfile.TemporaryDirectory(prefix="portdocs-bulk-") as folder:
        rows, found = plan(target, manifest, Path(folder), args.files_anywhere, args.allow_shared_files)
        print_plan(found, len({r.number for r in rows} | {p.row for p in found.problems if p.row}))
        if args.dry_run:
            return 1 if found.problems else 0
        outcomes = send(target, rows, found, args.retry_rejected)
    interrupted = False
    try:
        wait(target, outcomes, args.wait)
    except KeyboardInterrupt:  # what was sent goes on in the pipeline; the report says where it stood
        interrupted = True
    finally:  # whatever stopped the wait, the report says where every row stood
        write_report(report, outcomes)
    console.print(summary_table(outcomes))
    console.print(f"{counts(outcomes)}; report: {report}", markup=False)
    if interrupted:
        console.print("stopped waiting: run the same manifest again to wait for the rest", markup=False)
        return 130
    return 0 if all(o.attached for o in outcomes) else 1


def _seconds(text: str) -> float:
    seconds = float(text)
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"{text}: a number of seconds, 0 or more")
    return seconds


def add_command(command: argparse.ArgumentParser) -> None:
    """`portdocs bulk`'s own options (the stack ones are the other commands')."""
    command.add_argument("manifest", metavar="MANIFEST", help="a .csv or .jsonl manifest (docs/bulk.md)")
    command.add_argument("--dry-run", action="store_true", help="check every row; send nothing")
    command.add_argument(
        "--retry-rejected", action="store_true", help="send again the rows whose document was rejected"
    )
    command.add_argument(
        "--allow-shared-files",
        action="store_true",
        help="let one file go to several targets (one carrier invoice for several orders)",
    )
    command.add_argument(
        "--files-anywhere",
        action="store_true",
        help="let rows name files outside the manifest's folder (absolute paths, .., symlinks out)",
    )
    command.add_argument(
        "--report", metavar="PATH", help="the report, .csv or .json (default: MANIFEST.report.csv)"
    )
    command.add_argument(
        "--wait",
        type=_seconds,
        default=DEFAULT_WAIT_SECONDS,
        metavar="SECONDS",
        help="how long to wait for the documents to end (default: 30 minutes)",
    )
    command.set_defaults(handler=command_bulk)

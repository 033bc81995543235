"""Hostile soak of the whole pipeline through the local sandbox (`make soak`).

Drops SOAK_DOCUMENTS documents (default 1000) into the intake bucket, about a third of them for a
porting order and the rest for draft sub-requests, while everything that can go wrong does: every
S3 event is delivered twice, workers are killed mid-invocation, the Telnyx API, the files service
and the documents service fail at random (429 with and without hints, 5xx, dropped connections,
slow answers, expired forms, and "ambiguous" failures that took effect before failing), Telnyx's
clock jumps past its 30 minutes (deleting every porting-order upload not yet linked), files
are replaced or deleted shortly after being dropped, and invalid inputs are mixed in. A third of
the way through the drops comes an outage: for --outage-seconds (default 180) every Telnyx route
fails (5xx, dropped connections, timeouts, some after the call took effect), then recovers. Once the
pipeline is quiet, the dead-letter queues are redriven once, as an operator would, with the
faults cleared. Then every intake object version is judged from the documents ledger and from
what the Telnyx emulator holds.

The figures count intake object versions (and the two malformed messages kinds):
- lost: neither a ledger item nor a Telnyx document, or "associated" with nothing on Telnyx;
- stranded: not in a terminal state (associated, rejected, superseded, withdrawn) at the end,
  on Telnyx without a ledger item, or an invalid input that ended anything but rejected;
- wrongly_rejected: a valid file that ended in a terminal state other than the ones allowed for
  it (a file never replaced or deleted must be associated; an older version may also be
  superseded, a deleted file withdrawn);
- doubled / doubled_marked: attached to Telnyx more than once, without / with the ledger's
  possible_duplicate mark;
- needs_attention: documents the pipeline left for a person (too many unknown outcomes);
- events_missing: terminal ledger items whose event (the event_id of their outbox) is not among
  the events the stack's rule logged; events_repeated: events logged more than once (allowed and
  counted: events are at least once, subscribers dedupe on event_id);
- dlq_redriven: messages the operator's redrive moved back from both dead-letter queues.

Prints one line on stdout, the path of a JSON file with the offending documents on stderr, and
exits 1 if a document was lost, stranded, wrongly rejected, attached twice without a mark, left
for a person, or has no event.

    .venv/bin/python scripts/soak.py --documents 60 --seed 7 [--verbose]
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import logging
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from portdocs.documents import UNLINKED_DOCUMENT_LIFETIME_SECONDS
from portdocs_sandbox.cli import Target, document_events, redrive
from portdocs_sandbox.pdf_objects import assemble
from portdocs_sandbox.runtime import Chaos, IsolatedInvoker
from portdocs_sandbox.sandbox import Sandbox
from portdocs_sandbox.telnyx_emulator import ENDPOINTS, Fault, TelnyxEmulator

TERMINAL = frozenset({"associated", "rejected", "superseded", "withdrawn"})
# What each kind of intake object version may end as; anything else terminal is a wrong verdict.
ALLOWED = {
    "expected": frozenset({"associated"}),
    "replaced": frozenset({"superseded", "associated"}),  # attached before the replacement, or not
    "deleted": frozenset({"withdrawn", "associated"}),
    "invalid": frozenset({"rejected"}),
}
DOCUMENT_TYPES = ("loa", "csr", "invoice", "other")
INVALID_KINDS = (
    "empty",
    "text_as_pdf",
    "outside_layout",
    "unknown_type",
    "malformed_upload_request",
    "malformed_association",
)
DROP_RATE = 20.0  # inputs per second: a burst the single worker per function cannot keep up with
SETTLE_SECONDS = 12.0  # longer than a retry (1 s), a duplicate's delay (5 s) and a batching window (2 s)
POLL_SECONDS = 2.0
RETRY_AFTER_SECONDS = 1
KILL_RATE = 0.08
KILL_MAX_DELAY_SECONDS = 0.6  # most invocations end within a second: a longer delay would rarely land
PORTING_ORDER_SHARE = 0.3
ORDER_DOCUMENTS = ("loa", "invoice")  # an order's own, one of each: set, not added
# Telnyx's clock jumps past its 30 minutes this often while documents are dropped: every upload not
# yet linked is deleted and must be uploaded afresh (fewer jumps than a document's fresh uploads).
CLOCK_JUMPS = 2
CLOCK_JUMP_SECONDS = UNLINKED_DOCUMENT_LIFETIME_SECONDS + 60
# The outage: it starts a third of the way through the drops and lasts this long (--outage-seconds).
OUTAGE_SECONDS = 180.0
# Longer than the client's read timeout (telnyx_http.API_TIMEOUT): such a call times out.
OUTAGE_TIMEOUT_SECONDS = 35.0


def hostile_faults(scale: float) -> list[Fault]:
    """Each kind at a few per cent of calls: together about a fifth of calls fail, which the
    in-invocation retries and SQS redeliveries must absorb without stranding anything."""
    faults: list[Fault] = []
    for endpoint in ENDPOINTS:  # every endpoint the emulator answers
        faults += [
            Fault(endpoint, status=429, retry_after="1", rate=0.02 * scale, times=None),
            Fault(endpoint, status=429, rate=0.02 * scale, times=None),
            Fault(endpoint, status=429, ratelimit_reset="1", rate=0.02 * scale, times=None),
            *(Fault(endpoint, status=s, rate=0.01 * scale, times=None) for s in (500, 502, 503, 504)),
            Fault(endpoint, drop=True, rate=0.02 * scale, times=None),
            Fault(endpoint, latency=1.5, rate=0.03 * scale, times=None),  # slow, then answered normally
        ]
        if endpoint == "upload_requests":
            faults.append(Fault(endpoint, expire_forms=True, rate=0.03 * scale, times=None))
        else:  # the file stored, the association or link recorded, and the client told otherwise
            faults += [
                Fault(endpoint, ambiguous=True, rate=0.02 * scale, times=None),
                Fault(endpoint, ambiguous=True, drop=True, rate=0.02 * scale, times=None),
            ]
    return faults


def outage_faults() -> list[Fault]:
    """Every call to every Telnyx route fails: 5xx, dropped connections, answers slower than the
    client waits (timeouts), and some after the call took effect (recorded, then failed)."""
    return [
        Fault("any", ambiguous=True, rate=0.1, times=None),
        Fault("any", ambiguous=True, drop=True, rate=0.1, times=None),
        Fault("any", status=503, latency=OUTAGE_TIMEOUT_SECONDS, rate=0.03, times=None),
        Fault("any", drop=True, rate=0.25, times=None),
        *(Fault("any", status=status, rate=0.25, times=None) for status in (500, 502, 504)),
        Fault("any", status=503, times=None),  # whatever is left: a plain 503, no Retry-After
    ]


# -- the plan: what is dropped, and what each version should become ----------------------------------


@dataclass
class Version:
    """One intake object version (or one queue message) and what became of it."""

    input_id: int
    kind: str  # valid | replaced | deleted | one of INVALID_KINDS
    role: str  # a key of ALLOWED
    key: str
    body: bytes
    version_id: str | None = None
    etag: str | None = None
    message_id: str | None = None
    ledger: list[dict[str, Any]] = field(default_factory=list)
    telnyx_documents: list[str] = field(default_factory=list)

    @property
    def md5(self) -> str:
        return hashlib.md5(self.body, usedforsecurity=False).hexdigest()

    def describe(self, why: str) -> dict[str, Any]:
        return {
            "why": why,
            "input": self.input_id,
            "kind": self.kind,
            "key": self.key,
            "version_id": self.version_id,
            "etag": self.etag,
            "message_id": self.message_id,
            "ledger": [
                {
                    k: item.get(k)
                    for k in ("document_id", "state", "reason", "last_error", "possible_duplicate")
                }
                for item in self.ledger
            ],
            "telnyx_documents": self.telnyx_documents,
        }


@dataclass(order=True)
class Action:
    at: float
    sequence: int
    run: Callable[[], None] = field(compare=False)


def pdf(nonce: str) -> bytes:
    """The smallest PDF the uploader's pre-flight check takes (one page, a correct xref table);
    the nonce makes each version's bytes (and so its ETag and what Telnyx stores) unique, which
    maps Telnyx documents back."""
    return assemble(list(SOAK_PDF_OBJECTS), header=f"%PDF-1.4\n%soak {nonce}\n".encode())


SOAK_PDF_OBJECTS = (
    b"<< /Type /Catalog /Pages 2 0 R >>",
    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
)


class Plan:
    def __init__(self, rng: random.Random, documents: int, bucket: str, queues: dict[str, str]) -> None:
        self.rng = rng
        self.bucket = bucket
        self.queues = queues
        self.port_request = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.sub_requests = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(3)]
        self.porting_order = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.versions: list[Version] = []
        self.kinds = self._kinds(documents)

    def _kinds(self, documents: int) -> list[str]:
        # Every hostile kind at least once, so a small run still exercises each path.
        each_invalid = max(1, round(documents * 0.01))
        special = max(1, round(documents * 0.06))
        kinds = [k for k in INVALID_KINDS for _ in range(each_invalid)] + ["replaced", "deleted"] * special
        kinds = kinds[:documents]
        kinds += ["valid"] * (documents - len(kinds))
        self.rng.shuffle(kinds)
        return kinds

    def nonce(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def key(self, index: int) -> str:
        sub = self.rng.choice(self.sub_requests)
        folder = self.rng.choice(DOCUMENT_TYPES)
        if self.rng.random() < 0.1:
            folder = folder.upper()  # the layout accepts any case
        # Some names need URL-encoding in S3 events (spaces, '+', non-ASCII).
        name = f"doc {index} +1 (signé).pdf" if self.rng.random() < 0.1 else f"doc-{index:05d}.pdf"
        if self.rng.random() < PORTING_ORDER_SHARE:
            return f"porting-orders/{self.porting_order}/{folder}/{name}"
        return f"{self.port_request}/{sub}/{folder}/{name}"

    def actions(
        self, s3: Any, sqs: Any, emulator: TelnyxEmulator, outage: tuple[float, list[Fault]]
    ) -> list[Action]:
        """Every drop, replacement, deletion and message, at its moment (seconds from start), the
        jumps of Telnyx's clock that delete every porting-order upload not yet linked, and the
        outage (its length, and the faults that are back when it ends)."""
        actions: list[Action] = []

        def at(moment: float, run: Callable[[], None]) -> None:
            actions.append(Action(moment, len(actions), run))

        for index, kind in enumerate(self.kinds):
            moment = index / DROP_RATE
            if kind in ("malformed_upload_request", "malformed_association"):
                at(moment, self._message(sqs, index, kind))
                continue
            first = self._first_version(index, kind)
            self.versions.append(first)
            at(moment, self._put(s3, first))
            for later, run in self._after_the_drop(s3, first, moment):
                at(later, run)
        drop_seconds = len(self.kinds) / DROP_RATE
        for jump in range(1, CLOCK_JUMPS + 1):
            at(jump * drop_seconds / (CLOCK_JUMPS + 1), lambda: emulator.advance_clock(CLOCK_JUMP_SECONDS))
        outage_seconds, faults_after = outage
        if outage_seconds > 0:
            at(drop_seconds / 3, lambda: replace_faults(emulator, outage_faults()))
            at(drop_seconds / 3 + outage_seconds, lambda: replace_faults(emulator, faults_after))
        return actions

    def _first_version(self, index: int, kind: str) -> Version:
        """The version dropped first: a PDF of its own under a key of the layout, unless its kind
        spoils one of them (an invalid input) or says what happens to it next."""
        key, body, role = self.key(index), pdf(self.nonce()), "expected"
        if kind == "empty":
            body, role = b"", "invalid"
        elif kind == "text_as_pdf":
            body, role = f"a letter of authorisation, honestly {self.nonce()}\n".encode(), "invalid"
        elif kind == "outside_layout":
            key, role = f"inbox/{self.port_request}/doc-{index:05d}.pdf", "invalid"
        elif kind == "unknown_type":
            key, role = f"{self.port_request}/{self.sub_requests[0]}/contract/doc-{index:05d}.pdf", "invalid"
        elif kind in ("replaced", "deleted"):
            role = kind
        return Version(index, kind, role, key, body)

    def _after_the_drop(
        self, s3: Any, first: Version, moment: float
    ) -> list[tuple[float, Callable[[], None]]]:
        """What happens to the file a moment after its drop: a newer version, or its deletion."""
        later = moment + self.rng.uniform(0.05, 3.0)  # drawn for every drop: a seed replays the run
        if first.kind == "replaced":
            newest = Version(first.input_id, first.kind, "expected", first.key, pdf(self.nonce()))
            self.versions.append(newest)
            return [(later, self._put(s3, newest))]
        if first.kind == "deleted":
            return [(later, self._delete(s3, first.key))]
        return []

    def _delete(self, s3: Any, key: str) -> Callable[[], None]:
        # A versioned bucket keeps the version under a delete marker: the pipeline can still
        # read it by version id, but a user who deleted a file means it withdrawn.
        return lambda: s3.delete_object(Bucket=self.bucket, Key=key)

    def _put(self, s3: Any, version: Version) -> Callable[[], None]:
        def put() -> None:
            answer = s3.put_object(Bucket=self.bucket, Key=version.key, Body=version.body)
            version.version_id, version.etag = answer.get("VersionId"), answer["ETag"].strip('"')

        return put

    def _message(self, sqs: Any, index: int, kind: str) -> Callable[[], None]:
        sub = self.sub_requests[0]
        if kind == "malformed_upload_request":
            queue = self.queues["intake"]
            body = (
                "upload this please"
                if index % 2
                else json.dumps(  # names a real target but misspells a field: refused, not guessed
                    {
                        "bucket": self.bucket,
                        "key": f"inbox/{index}.pdf",
                        "draft_port_request_id": self.port_request,
                        "draft_sub_request_id": sub,
                        "document_type": "loa",
                        "descripton": "typo",
                    }
                )
            )
        else:
            queue = self.queues["association"]
            body = (
                "{not json"
                if index % 2
                else json.dumps(  # no url
                    {
                        "draft_port_request_id": self.port_request,
                        "draft_sub_request_id": sub,
                        "document_type": "loa",
                        "description": "no url",
                    }
                )
            )
        version = Version(index, kind, "invalid", f"sqs:{kind}", body.encode())
        self.versions.append(version)

        def send() -> None:
            version.message_id = sqs.send_message(QueueUrl=queue, MessageBody=body)["MessageId"]

        return send


def replace_faults(emulator: TelnyxEmulator, faults: list[Fault]) -> None:
    emulator.clear_faults()
    for fault in faults:
        emulator.inject(fault)


def run_actions(actions: list[Action], say: Callable[[str], None]) -> None:
    heapq.heapify(actions)
    started, done = time.monotonic(), 0
    while actions:
        action = heapq.heappop(actions)
        if (wait := action.at - (time.monotonic() - started)) > 0:
            time.sleep(wait)
        action.run()
        done += 1
        if done % 100 == 0:
            say(f"{done} drops, replacements, deletions and messages sent")


# -- waiting for the pipeline to settle ----------------------------------------------------------------


def queue_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def scan(table: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {"ConsistentRead": True}
    while True:
        page = table.scan(**request)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def wait_until_quiet(
    sqs: Any, queues: Iterable[str], table: Any, deadline: float, say: Callable[[str], None]
) -> bool:
    """Both queues empty (in flight and delayed included) and the ledger unchanged for
    SETTLE_SECONDS; False if the deadline came first."""
    quiet_since: float | None = None
    last: frozenset[tuple[str, str, str]] | None = None
    while time.monotonic() < deadline:
        depths = [queue_depth(sqs, url) for url in queues]
        items = scan(table)
        fingerprint = frozenset(
            (str(i["document_id"]), str(i.get("state")), str(i.get("updated_at"))) for i in items
        )
        now = time.monotonic()
        if any(depths) or fingerprint != last:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= SETTLE_SECONDS:
            return True
        last = fingerprint
        states: dict[str, int] = {}
        for item in items:
            states[str(item.get("state"))] = states.get(str(item.get("state")), 0) + 1
        say(f"queues {depths}, ledger {dict(sorted(states.items()))}")
        time.sleep(POLL_SECONDS)
    return False


# -- the verdict ------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    lost: list[dict[str, Any]] = field(default_factory=list)
    doubled: list[dict[str, Any]] = field(default_factory=list)
    doubled_marked: list[dict[str, Any]] = field(default_factory=list)
    stranded: list[dict[str, Any]] = field(default_factory=list)
    wrongly_rejected: list[dict[str, Any]] = field(default_factory=list)
    conflicting: list[dict[str, Any]] = field(default_factory=list)  # for diagnosis only
    unmatched_ledger_items: list[dict[str, Any]] = field(default_factory=list)
    unmatched_telnyx_documents: list[dict[str, Any]] = field(default_factory=list)
    needs_attention: list[dict[str, Any]] = field(default_factory=list)
    events_missing: list[dict[str, Any]] = field(default_factory=list)
    events_repeated: int = 0  # allowed: events are at least once, and a subscriber dedupes on event_id

    @property
    def failed(self) -> bool:
        return bool(
            self.lost
            or self.stranded
            or self.wrongly_rejected
            or self.doubled
            or self.needs_attention
            or self.events_missing
        )


def judge_events(items: list[dict[str, Any]], events: list[dict[str, Any]], verdict: Verdict) -> None:
    """Every terminal ledger item has its event on the bus (the one its outbox names), and no
    document was left for a person; events published more than once are counted."""
    published = Counter(str(event["detail"].get("event_id")) for event in events)
    verdict.events_repeated = sum(times - 1 for times in published.values() if times > 1)
    for item in items:
        if str(item.get("state")) in TERMINAL and str(item.get("event_id")) not in published:
            verdict.events_missing.append(_plain(item))
        if str(item.get("last_error", "")).startswith("needs attention"):
            verdict.needs_attention.append(_plain(item))


def attribute(
    versions: list[Version],
    ledger: list[dict[str, Any]],
    telnyx: list[dict[str, Any]],
    stored_bytes: Callable[[str], bytes],
    links: list[dict[str, Any]],
    verdict: Verdict,
) -> None:
    """Hangs each ledger item, Telnyx document (draft flow) and link to the porting order on the
    version it came from."""
    by_version_id = {v.version_id: v for v in versions if v.version_id}
    by_key_etag = {(v.key, v.etag): v for v in versions if v.etag is not None}
    by_message = {f"sqs-message:{v.message_id}": v for v in versions if v.message_id}
    by_md5 = {v.md5: v for v in versions if v.body and not v.message_id}
    for item in ledger:
        source = item.get("source") or {}
        owner = (
            by_message.get(str(item["document_id"]))
            or by_version_id.get(str(source.get("version_id")))
            or by_key_etag.get((str(source.get("key")), str(source.get("etag", "")).strip('"')))
        )
        if owner is None:
            verdict.unmatched_ledger_items.append(_plain(item))
        else:
            owner.ledger.append(_plain(item))
    for document in telnyx:
        try:
            owner = by_md5.get(hashlib.md5(stored_bytes(document["url"]), usedforsecurity=False).hexdigest())
        except KeyError:
            owner = None
        if owner is None:
            verdict.unmatched_telnyx_documents.append(document)
        else:
            owner.telnyx_documents.append(str(document["id"]))
    by_sha256 = {hashlib.sha256(v.body).hexdigest(): v for v in versions if v.body and not v.message_id}
    for link in links:
        owner = by_sha256.get(link["sha256"])
        if owner is None:
            verdict.unmatched_telnyx_documents.append(link)
        elif link["document_type"] in ORDER_DOCUMENTS and str(link["document_id"]) in owner.telnyx_documents:
            # The order's one LOA (or invoice) set to this document again after another document
            # had replaced it (two LOAs for one order, retried): still one attachment of it.
            continue
        else:
            owner.telnyx_documents.append(str(link["document_id"]))


def judge(version: Version, verdict: Verdict) -> None:
    states = {str(item.get("state")) for item in version.ledger}
    allowed = ALLOWED[version.role]
    attached = len(version.telnyx_documents)
    if attached > 1:
        marked = any(item.get("possible_duplicate") is True for item in version.ledger)
        (verdict.doubled_marked if marked else verdict.doubled).append(
            version.describe(f"attached {attached} times")
        )
    if len(states) > 1:
        verdict.conflicting.append(version.describe(f"several ledger items: {sorted(states)}"))
    if not version.ledger:
        if attached:
            verdict.stranded.append(version.describe("on Telnyx but no ledger item says so"))
        else:
            verdict.lost.append(version.describe("no ledger item and no Telnyx document"))
        return
    if states & allowed:
        if states & allowed == {"associated"} and not attached:
            verdict.lost.append(version.describe("the ledger says associated, Telnyx holds no such document"))
        return
    if not states & TERMINAL:
        verdict.stranded.append(version.describe(f"ended {sorted(states)}, not a terminal state"))
    elif version.role == "invalid":
        verdict.stranded.append(version.describe(f"an invalid input ended {sorted(states)}, not rejected"))
    else:
        verdict.wrongly_rejected.append(
            version.describe(f"ended {sorted(states)}; allowed: {sorted(allowed)}")
        )


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """A ledger item as JSON can hold it (DynamoDB numbers are Decimals)."""

    def convert(value: Any) -> Any:
        if isinstance(value, Decimal):
            return int(value) if value % 1 == 0 else float(value)
        return sorted(value, key=str) if isinstance(value, set) else str(value)

    plain: dict[str, Any] = json.loads(json.dumps(item, default=convert))
    return plain


# -- a check of the instrument itself ------------------------------------------------------------------------


def check_ambiguous_fault() -> None:
    """The soak relies on the emulator's ambiguous fault recording the association and still
    failing the call, through the admin API as a user would inject it; prove that first."""
    headers = {"x-api-user": "portdocs@example.com", "x-api-token": "emulator-token"}
    with TelnyxEmulator() as emulator:
        emulator.seed("prq-check", "sub-check")
        form = requests.post(
            f"{emulator.api_url}/files/upload_requests",
            json={"content_type": "application/pdf"},
            headers=headers,
            timeout=10,
        ).json()
        parts = [(k, (None, v)) for k, v in form["form_fields"].items()]
        stored = requests.post(
            form["url"], files=[*parts, ("file", ("a.pdf", pdf("check"), "application/pdf"))], timeout=10
        )
        body = {
            "document_type": "loa",
            "description": "check",
            "url": stored.headers["Location"],
            "draft_sub_request_id": "sub-check",
        }
        associate = (
            f"{emulator.api_url}/origination/porting/draft_port_requests/prq-check/supporting_documents"
        )
        for fault in ({"ambiguous": True}, {"ambiguous": True, "drop": True}):
            before = len(emulator.documents())
            injected = requests.post(
                f"{emulator.api_url}/_emulator/faults",
                json={"endpoint": "supporting_documents", "times": 1, **fault},
                timeout=10,
            )
            assert injected.status_code == 201, injected.text
            try:
                status: int | str = requests.post(
                    associate, json=body, headers=headers, timeout=10
                ).status_code
            except requests.ConnectionError:
                status = "dropped"
            assert status == (504 if "drop" not in fault else "dropped"), (
                f"ambiguous fault {fault} answered {status}"
            )
            assert len(emulator.documents()) == before + 1, (
                f"ambiguous fault {fault} did not record the association"
            )


# -- the run -------------------------------------------------------------------------------------------------


def soak(
    documents: int,
    seed: int,
    time_limit: float,
    fault_scale: float,
    kill_rate: float,
    outage_seconds: float,
    verbose: bool,
) -> int:
    started = time.monotonic()
    deadline = started + time_limit

    def say(text: str) -> None:
        if verbose:
            print(f"[{time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    # One access line per call; dropped ones are the point.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        check_ambiguous_fault()
    except AssertionError as error:
        print(f"soak: not run, the emulator's ambiguous fault misbehaves: {error}", file=sys.stderr)
        return 2
    say("the emulator's ambiguous fault records the association and fails the call")
    rng = random.Random(seed)
    log_dir = Path(tempfile.mkdtemp(prefix="portdocs-soak-logs-"))
    with Sandbox(log_dir=log_dir, retry_after_seconds=RETRY_AFTER_SECONDS) as sandbox:
        assert sandbox.state is not None and sandbox.runtime is not None
        runtime, emulator, target = sandbox.runtime, sandbox.emulator, Target.from_sandbox(sandbox.state)
        invoker = runtime.invoker
        assert isinstance(invoker, IsolatedInvoker)
        outputs = sandbox.state.outputs
        s3, sqs = target.client("s3"), target.client("sqs")
        table = target.table()
        queues = {"intake": outputs["IntakeQueueUrl"], "association": outputs["AssociationQueueUrl"]}
        plan = Plan(rng, documents, outputs["IntakeBucketName"], queues)
        emulator.seed(plan.port_request, *plan.sub_requests)
        emulator.seed_porting_order(plan.porting_order)

        emulator.random.seed(seed)
        replace_faults(emulator, hostile_faults(fault_scale))
        invoker.chaos = Chaos(kill_rate=kill_rate, max_delay_seconds=KILL_MAX_DELAY_SECONDS, seed=seed)
        runtime.random.seed(seed)
        runtime.duplicate_intake_deliveries = True
        say(f"dropping {documents} documents into s3://{plan.bucket}/{plan.port_request}/")
        run_actions(plan.actions(s3, sqs, emulator, (outage_seconds, hostile_faults(fault_scale))), say)
        settled = wait_until_quiet(sqs, queues.values(), table, deadline, say)

        # The operator's turn: Telnyx is healthy again, nothing crashes; redrive once.
        emulator.clear_faults()
        invoker.chaos = None
        redriven = {queue: redrive(target, queue) for queue in ("intake", "association")}
        say(f"redrove {redriven}")
        settled = wait_until_quiet(sqs, queues.values(), table, deadline, say) and settled

        verdict = Verdict()
        telnyx = [d for d in emulator.documents() if d["draft_port_request_id"] == plan.port_request]
        links = [link for link in emulator.links() if link["porting_order_id"] == plan.porting_order]
        items = scan(table)
        attribute(plan.versions, items, telnyx, emulator.stored_bytes, links, verdict)
        judge_events(items, document_events(target), verdict)
        calls = emulator.calls()
        hostilities = {
            "invocations": invoker.invocations,
            "chaos_kills_armed": invoker.kills_armed,
            "chaos_kills": invoker.kills,
            "workers_replaced": invoker.replaced,
            "duplicate_deliveries": runtime.duplicates_sent,
            "telnyx_calls": len(calls),
            "telnyx_calls_by_endpoint": dict(Counter(str(c["endpoint"]) for c in calls)),
            "telnyx_calls_failed": sum(1 for c in calls if c.get("status", 0) >= 400),
            "telnyx_calls_ambiguous": sum(1 for c in calls if c.get("ambiguous")),
            "clock_jumps": CLOCK_JUMPS,
            "documents_uploaded_again": sum(1 for item in items if int(item.get("reuploads", 0)) > 0),
        }
    for version in plan.versions:
        judge(version, verdict)
    elapsed = time.monotonic() - started
    line = (
        f"soak: documents={documents} lost={len(verdict.lost)} doubled={len(verdict.doubled)}"
        f" doubled_marked={len(verdict.doubled_marked)} stranded={len(verdict.stranded)}"
        f" wrongly_rejected={len(verdict.wrongly_rejected)} needs_attention={len(verdict.needs_attention)}"
        f" events_missing={len(verdict.events_missing)} events_repeated={verdict.events_repeated}"
        f" dlq_redriven={sum(redriven.values())} outage_seconds={outage_seconds:.0f}"
        f" seconds={elapsed:.1f}"
    )
    if not settled:  # the figures are then a snapshot of a pipeline still moving
        line += " unsettled=1"
    details = {
        "line": line,
        "seed": seed,
        "documents": documents,
        "versions": len(plan.versions),
        "kinds": {kind: plan.kinds.count(kind) for kind in sorted(set(plan.kinds))},
        "settled": settled,
        "draft_port_request_id": plan.port_request,
        "porting_order_id": plan.porting_order,
        "dlq_redriven": redriven,
        "hostilities": hostilities,
        "function_logs": str(log_dir),
        **{name: value for name, value in vars(verdict).items()},
    }
    report = Path(tempfile.mkstemp(prefix="portdocs-soak-", suffix=".json")[1])
    report.write_text(json.dumps(details, indent=2, ensure_ascii=False))
    print(line, flush=True)
    print(report, file=sys.stderr, flush=True)
    return 1 if verdict.failed or not settled else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--documents",
        type=int,
        default=int(os.environ.get("SOAK_DOCUMENTS", "1000")),
        help="(env SOAK_DOCUMENTS)",
    )
    parser.add_argument("--seed", type=int, default=None, help="replays the same workload (default: random)")
    parser.add_argument(
        "--time-limit", type=float, default=None, help="seconds (default: 600 + 1.5 per document)"
    )
    parser.add_argument("--fault-scale", type=float, default=1.0, help="multiplies every fault rate")
    parser.add_argument(
        "--kill-rate", type=float, default=KILL_RATE, help="chance a worker is killed per invocation"
    )
    parser.add_argument(
        "--outage-seconds",
        type=float,
        default=OUTAGE_SECONDS,
        help="how long every Telnyx route fails, from a third of the way through the drops (0: none)",
    )
    parser.add_argument("--verbose", action="store_true", help="progress on stderr")
    args = parser.parse_args(argv)
    if args.documents < 1:
        parser.error("--documents must be at least 1")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    time_limit = (
        args.time_limit if args.time_limit is not None else 600 + args.outage_seconds + 1.5 * args.documents
    )
    return soak(
        args.documents, seed, time_limit, args.fault_scale, args.kill_rate, args.outage_seconds, args.verbose
    )


if __name__ == "__main__":
    sys.exit(main())

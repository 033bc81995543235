"""Records of one batch in flight together (moto, the emulator over HTTP): bounded by
RECORD_CONCURRENCY, each record's outcome, log lines and failures its own."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from portdocs.observability import logger
from portdocs_sandbox.telnyx_emulator import Fault
from tests.support import PORT_REQUEST, SAMPLES, SUB_REQUEST, Pipeline, set_record_concurrency

LOA = (SAMPLES / "Letter of Authorization.pdf").read_bytes()


@pytest.fixture
def concurrency(monkeypatch: pytest.MonkeyPatch) -> int:
    set_record_concurrency(monkeypatch, 3)
    return 3


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The portdocs log lines written so far, as JSON objects."""
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in captured.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)


def drop_files(pipeline: Pipeline, targets: list[tuple[str, str]]) -> list[str]:
    """Drops one LOA per (port request, sub-request); returns the intake messages S3 sent."""
    for index, (port_request, sub_request) in enumerate(targets):
        pipeline.drop(f"{port_request}/{sub_request}/loa/loa-{index}.pdf", LOA)
    return [m["Body"] for m in pipeline.receive("IntakeQueueUrl")]


def test_an_uploader_batch_is_in_flight_together_within_the_bound(pipeline: Pipeline, concurrency: int):
    bodies = drop_files(pipeline, [(PORT_REQUEST, SUB_REQUEST)] * 8)
    pipeline.emulator.inject(Fault(endpoint="files", latency=0.4, times=None))

    response, _ = pipeline.invoke("uploader", bodies)

    assert response == {"batchItemFailures": []}
    assert len(pipeline.receive("AssociationQueueUrl")) == 8
    # Sequential records would never overlap; more than the bound would be a broken promise to
    # the rate limit (README: MaximumConcurrency x RECORD_CONCURRENCY calls in flight).
    assert 1 < pipeline.emulator.peak_in_flight("files") <= concurrency


def test_one_slow_and_one_failing_record_hold_back_only_themselves(
    pipeline: Pipeline,
    concurrency: int,
    log_lines: Callable[[], list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
):
    slow, failing = str(uuid.uuid4()), str(uuid.uuid4())
    pipeline.emulator.seed(slow, SUB_REQUEST)
    pipeline.emulator.seed(failing, SUB_REQUEST)
    targets = [(PORT_REQUEST, SUB_REQUEST)] * 4 + [(slow, SUB_REQUEST)] + [(PORT_REQUEST, SUB_REQUEST)] * 4
    targets.insert(2, (failing, SUB_REQUEST))
    pipeline.invoke("uploader", drop_files(pipeline, targets))
    associations = [m["Body"] for m in pipeline.receive("AssociationQueueUrl")]
    pipeline.emulator.inject(Fault(endpoint="supporting_documents", latency=2.0, times=None, path_contains=slow))
    pipeline.emulator.inject(Fault(endpoint="supporting_documents", status=401, times=None, path_contains=failing))
    pipeline.emulator.inject(Fault(endpoint="supporting_documents", latency=0.3, times=None))

    capsys.readouterr()
    response, ids = pipeline.invoke("associator", associations, timeout=60)

    failing_message = next(i for i, body in zip(ids, associations, strict=True) if failing in body)
    assert response == {"batchItemFailures": [{"itemIdentifier": failing_message}]}
    states = {e["draft_port_request_id"]: e["state"] for e in pipeline.ledger().values() if e["state"] != "associated"}
    assert states == {failing: "failed"}
    associated = [e for e in pipeline.ledger().values() if e["state"] == "associated"]
    assert len(associated) == 9 and len(pipeline.emulator.documents()) == 9
    assert 1 < pipeline.emulator.peak_in_flight("supporting_documents") <= concurrency

    # Each record's lines carry its own document's id, never a neighbour's: the records ran side
    # by side on shared threads.
    telnyx_ids = {e["document_id"]: e["telnyx_document_id"] for e in associated}
    lines = log_lines()
    said_associated = {
        line["correlation_id"]: line["telnyx_document_id"] for line in lines if line["message"] == "document associated"
    }
    assert said_associated == telnyx_ids
    (kept,) = [line for line in lines if line["message"] == "document kept for retry"]
    assert kept["correlation_id"] == kept["document_id"] and failing in kept["document_id"]

    # Counted from every thread, none lost (the invocation's EMF blob on stdout).
    (emf,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emf["DocumentsAssociated"] == [1.0] * 9 and emf["DocumentsFailed"] == [1.0]

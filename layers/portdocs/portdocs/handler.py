"""The shape both Lambdas share: an SQS batch, one service call per record, partial failures."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any, Protocol

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

import portdocs.flows
import portdocs.idempotency
from portdocs import aws, delivery
from portdocs.config import Settings
from portdocs.errors import DeferredError, TransientError
from portdocs.observability import correlate, logger, metrics
from portdocs.redelivery import Redelivery
from portdocs.retrying import MIN_RECORD_SECONDS, Deadline
from portdocs.urls import without_url_paths

# What the pipeline's services are made of on their first invocation (portdocs.wiring), imported
# here, in Lambda's init phase, rather than in the first batch's time: the Telnyx adapters and
# requests (through the flows), Powertools' idempotency and its secrets provider. The sweeper does
# not use this module and imports none of them.
IMPORTED_AT_INIT = (portdocs.flows, portdocs.idempotency, parameters)


class RecordService(Protocol):
    @property
    def record_concurrency(self) -> int: ...

    def bind(self, lambda_context: Any) -> None: ...

    def handle_message(self, body: str, message_id: str, deadline: Deadline) -> None: ...


_redelivery_made = threading.Lock()


def redelivery() -> Redelivery:
    """Made on first use (most invocations hand nothing back), once, whichever record asks first."""
    with _redelivery_made:
        return _redelivery()


@cache
def _redelivery() -> Redelivery:
    return Redelivery(aws.sqs(), Settings.from_environ().backoff_base_seconds)


def handed_back(record: SQSRecord, error: TransientError) -> bool:
    """A deferred record goes back after the wait asked for; a failing one (recorded as failed
    already, portdocs.lifecycle) with a growing delay, so that an outage is ridden out over time.
    False when it must spend a receive instead."""
    if isinstance(error, DeferredError):
        return redelivery().defer(record.raw_event, error.retry_after or 0.0)
    return redelivery().back_off(record.raw_event)


@cache
def record_workers(concurrency: int) -> ThreadPoolExecutor:
    """At most `concurrency` records of a batch are in flight at once, each on a thread of its own
    (their Telnyx, S3 and DynamoDB calls block); made once per execution environment."""
    return ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="record")


def sqs_batch_handler(
    service: Callable[[], RecordService],
) -> Callable[[dict[str, Any], LambdaContext], PartialItemFailureResponse]:
    # A batch whose every record failed must still report them one by one, not raise.
    processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    def process_record(record: SQSRecord, lambda_context: LambdaContext) -> None:
        # Until the record names a document, its log lines carry the message's own id.
        correlate(f"sqs-message:{record.message_id}")
        delivery.received(int(record.attributes.approximate_receive_count))
        # The invocation's remaining time is the budget of the whole batch, not of each record: a
        # record that waited for a worker starts only if enough of it is left.
        deadline = Deadline.from_context(lambda_context)
        try:
            deadline.ensure(MIN_RECORD_SECONDS, "start another record")
            service().handle_message(record.body, record.message_id, deadline)
        except TransientError as error:
            if not handed_back(record, error):
                raise
        except Exception as error:
            # Powertools reports the record as failed without a word: say it here, in the record's
            # own context, including for faults before any document was known (a ledger read).
            logger.warning(
                "record not done; SQS will deliver it again",
                extra={"error": without_url_paths(f"{type(error).__name__}: {error}")},
            )
            raise

    async def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
        # Powertools' async processor runs every record of the batch together and collects the
        # partial failures; the worker pool bounds how many run at once. Each record runs in a
        # copy of the context, so its log keys (correlate) are its own.
        workers = record_workers(service().record_concurrency)
        record_context = contextvars.copy_context()
        await asyncio.get_running_loop().run_in_executor(
            workers, record_context.run, process_record, record, lambda_context
        )

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
        service().bind(context)
        return async_process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return lambda_handler

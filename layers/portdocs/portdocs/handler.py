"""The shape both Lambdas share: an SQS batch, one service call per record, partial failures."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, Protocol

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from portdocs import aws
from portdocs.errors import DeferredError
from portdocs.observability import logger, metrics
from portdocs.redelivery import Redelivery
from portdocs.retrying import MIN_RECORD_SECONDS, Deadline


class RecordService(Protocol):
    def bind(self, lambda_context: Any) -> None: ...

    def handle_message(self, body: str, message_id: str, deadline: Deadline) -> None: ...


@cache
def redelivery() -> Redelivery:
    return Redelivery(aws.client("sqs"))


def sqs_batch_handler(
    service: Callable[[], RecordService],
) -> Callable[[dict[str, Any], LambdaContext], PartialItemFailureResponse]:
    # A batch whose every record failed must still report them one by one, not raise.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
        # Until the record names a document, its log lines carry the message's own id.
        logger.set_correlation_id(f"sqs-message:{record.message_id}")
        # The invocation's remaining time is the budget of the whole batch, not of each record.
        deadline = Deadline.from_context(lambda_context)
        try:
            deadline.ensure(MIN_RECORD_SECONDS, "start another record")
            service().handle_message(record.body, record.message_id, deadline)
        except DeferredError as error:
            if not redelivery().defer(record.raw_event, error.retry_after or 0.0):
                raise

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
        service().bind(context)
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return lambda_handler

"""The shape both Lambdas share: an SQS batch, one service call per record, partial failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from portdocs.observability import logger, metrics, tracer
from portdocs.retrying import Deadline


class RecordService(Protocol):
    def bind(self, lambda_context: Any) -> None: ...

    def handle_message(self, body: str, message_id: str, deadline: Deadline) -> None: ...


def sqs_batch_handler(
    service: Callable[[], RecordService],
) -> Callable[[dict[str, Any], LambdaContext], PartialItemFailureResponse]:
    # A batch whose every record failed must still report them one by one, not raise.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
        service().handle_message(record.body, record.message_id, Deadline.from_context(lambda_context))

    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
        service().bind(context)
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return lambda_handler

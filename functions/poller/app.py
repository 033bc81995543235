"""Poller Lambda: on a schedule, Telnyx's porting events since the last poll and each followed
order's status, requirements and document reviews -> notifications queue (portdocs.poller)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from portdocs.observability import logger, metrics
from portdocs.retrying import Deadline
from portdocs.wiring import poller


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    return poller().poll(Deadline.from_context(context))

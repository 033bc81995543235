"""Sweeper Lambda: on a schedule, finds documents stuck open, counts them and puts the ones it
safely can back through the pipeline (portdocs.sweeper)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from portdocs.observability import logger, metrics
from portdocs.wiring import sweeper


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    return sweeper().sweep()

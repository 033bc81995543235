"""Notifications Lambda: Telnyx's signed porting webhooks over HTTPS -> verified -> notifications
queue (portdocs.receiver). Imports no Telnyx client, flow or ledger: the public endpoint's cold
start and its reach stay small."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from portdocs.observability import logger, metrics
from portdocs.wiring import receiver


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return receiver().receive(event).as_response()

"""Associator Lambda: association queue -> supporting document on the Telnyx draft sub-request."""

from portdocs.handler import sqs_batch_handler
from portdocs.wiring import association_service

lambda_handler = sqs_batch_handler(association_service)

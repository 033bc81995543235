"""Tracker Lambda: notifications queue (webhooks and polls) -> each porting order's recorded
status, events on the bus, and a notice to a person when an order needs one (portdocs.tracker)."""

from portdocs.handler import sqs_batch_handler
from portdocs.wiring import tracker

lambda_handler = sqs_batch_handler(tracker)

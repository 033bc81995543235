"""Uploader Lambda: intake queue (S3 notifications and upload requests) -> file uploaded to Telnyx
-> association request queued."""

from portdocs.handler import sqs_batch_handler
from portdocs.wiring import upload_service

lambda_handler = sqs_batch_handler(upload_service)

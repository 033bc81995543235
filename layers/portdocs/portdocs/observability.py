"""The Powertools logger and metrics, created once and shared by every module.

No Powertools Tracer: it is built on the AWS X-Ray SDK, which AWS no longer develops (support ends
2027-02-25). Lambda's active tracing (`Tracing: Active`) records each invocation without any SDK;
spans for the HTTP and AWS calls inside come from the optional OpenTelemetry layer
(docs/operations.md, "Tracing"), which instruments requests and botocore without code here."""

from __future__ import annotations

import logging
import threading
import warnings

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

# A batch of S3 test events legitimately records no metric; that is not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger()  # service name: POWERTOOLS_SERVICE_NAME, set per function

# The AWS SDK's and urllib3's debug output holds whole requests and answers: the Telnyx credentials
# in GetSecretValue's answer, Location URLs in queue messages and ledger items, signed request
# lines; Powertools' own debug lines quote records' exceptions and idempotency data. LogLevel DEBUG
# sets Lambda's root logger to DEBUG (template.yaml); these stay at WARNING whatever it says
# (tests/e2e: every log line at DEBUG scanned for the real values). portdocs' own logger is not
# among them: its lines are written to say nothing secret.
for _library in ("boto3", "botocore", "s3transfer", "urllib3", "aws_lambda_powertools"):
    logging.getLogger(_library).setLevel(logging.WARNING)
metrics = Metrics(namespace="portdocs")


# Powertools' add_metric reads a metric's entry and then replaces it: records counting side by side
# (portdocs.handler runs them on threads) would lose increments without this lock.
_counting = threading.Lock()


def count(metric: str) -> None:
    with _counting:
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)


def count_by(metric: str, dimension: str, value: str) -> None:
    """One count with a dimension of its own (the dashboard's orders by status), flushed at once:
    the function's other metrics keep only the service dimension."""
    with (
        _counting,
        single_metric(
            name=metric,
            unit=MetricUnit.Count,
            value=1,
            namespace=metrics.namespace,
            default_dimensions=metrics.default_dimensions,
        ) as one,
    ):
        one.add_dimension(name=dimension, value=value)


def correlate(correlation_id: str) -> None:
    """Every later log line of this record carries `correlation_id`. Records run side by side, so
    the key lives in the record's own context (Powertools' thread-safe keys), never in the
    logger's shared state."""
    logger.thread_safe_append_keys(correlation_id=correlation_id)

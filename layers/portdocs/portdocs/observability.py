"""The Powertools logger and metrics, created once and shared by every module.

No Powertools Tracer: it is built on the AWS X-Ray SDK, which AWS no longer develops (support ends
2027-02-25). Lambda's active tracing (`Tracing: Active`) records each invocation without any SDK;
spans for the HTTP and AWS calls inside come from the optional OpenTelemetry layer (README,
"Tracing"), which instruments requests and botocore without code here."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

# A batch of S3 test events legitimately records no metric; that is not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger()  # service name: POWERTOOLS_SERVICE_NAME, set per function
metrics = Metrics(namespace="portdocs")


def count(metric: str) -> None:
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)

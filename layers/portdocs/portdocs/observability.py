"""The Powertools logger, metrics and tracer, created once and shared by every module."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

# A batch of S3 test events legitimately records no metric; that is not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger()  # service name: POWERTOOLS_SERVICE_NAME, set per function
metrics = Metrics(namespace="portdocs")
tracer = Tracer()


def count(metric: str) -> None:
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)

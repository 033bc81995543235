"""The Powertools logger, metrics and tracer, created once and shared by every module."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()  # service name: POWERTOOLS_SERVICE_NAME, set per function
metrics = Metrics(namespace="portdocs")
tracer = Tracer()


def count(metric: str) -> None:
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)

"""Powertools idempotency (DynamoDB) for the services' once-only steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

Step = TypeVar("Step", bound=Callable[..., Any])


class Idempotency:
    def __init__(self, table_name: str, ttl_seconds: int, dynamodb_client: Any) -> None:
        self._store = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=dynamodb_client)
        self._config = IdempotencyConfig(expires_after_seconds=ttl_seconds)

    def once(self, step: Step, key_argument: str) -> Step:
        """`step` runs at most once per value of its `key_argument` (a dict) within the TTL; a
        repeat returns the first call's result; a concurrent repeat fails and is retried."""
        return idempotent_function(
            data_keyword_argument=key_argument, persistence_store=self._store, config=self._config
        )(step)

    def bind(self, lambda_context: Any) -> None:
        """Lets an in-progress lock expire when this invocation would time out."""
        self._config.register_lambda_context(lambda_context)

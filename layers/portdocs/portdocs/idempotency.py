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
        self._table_name = table_name
        self._client = dynamodb_client
        self._config = IdempotencyConfig(expires_after_seconds=ttl_seconds)

    def once(self, step: Step, key_argument: str) -> Step:
        """`step` runs at most once per value of its `key_argument` (a dict) within the TTL; a
        repeat returns the first call's result; a concurrent repeat fails (Powertools'
        IdempotencyAlreadyInProgressError).

        Records run side by side, and a Powertools persistence layer keeps per-step state (the
        key prefix, the TTL) that every call re-applies. So each step has a layer of its own, and
        it is configured here, before any record runs, not first by racing record threads (one
        could write its record with the default 1 h expiry)."""
        store = DynamoDBPersistenceLayer(table_name=self._table_name, boto3_client=self._client)
        store.configure(self._config, function_name=f"{step.__module__}.{step.__qualname__}")  # as Powertools names it
        return idempotent_function(data_keyword_argument=key_argument, persistence_store=store, config=self._config)(
            step
        )

    def bind(self, lambda_context: Any) -> None:
        """Lets an in-progress lock expire when this invocation would time out."""
        self._config.register_lambda_context(lambda_context)

"""Powertools idempotency (DynamoDB) for the services' once-only steps."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.serialization.dataclass import DataclassSerializer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Result = TypeVar("Result")


class Idempotency:
    def __init__(self, table_name: str, ttl_seconds: int, dynamodb_client: DynamoDBClient) -> None:
        self._table_name = table_name
        self._client = dynamodb_client
        self._config = IdempotencyConfig(expires_after_seconds=ttl_seconds)

    def once(
        self, step: Callable[..., Result], key_argument: str, result: type[Result], name: str
    ) -> Callable[..., Result]:
        """`step` runs at most once per value of its `key_argument` (a dict) within the TTL; a
        repeat returns the first call's `result` (a dataclass, stored as its fields); a concurrent
        repeat fails (Powertools' IdempotencyAlreadyInProgressError).

        `name` prefixes every key the step stores, after the function's own name, as Powertools
        does by default with the step's module and qualified name: records already in the table
        are found only under the prefix they were written with, so it is spelled out here, where
        a refactor that moves the step cannot change it.

        Records run side by side, and a Powertools persistence layer keeps per-step state (the
        key prefix, the TTL) that every call re-applies. So each step has a layer of its own, and
        it is configured here, before any record runs, not first by racing record threads (one
        could write its record with the default 1 h expiry)."""
        key_prefix = f"{os.environ.get('AWS_LAMBDA_FUNCTION_NAME', 'test-func')}.{name}"
        store = DynamoDBPersistenceLayer(table_name=self._table_name, boto3_client=self._client)
        store.configure(self._config, key_prefix=key_prefix)
        once: Callable[..., Result] = idempotent_function(
            data_keyword_argument=key_argument,
            persistence_store=store,
            config=self._config,
            output_serializer=DataclassSerializer(model=result),
            key_prefix=key_prefix,
        )(step)
        return once

    def bind(self, lambda_context: Any) -> None:
        """Lets an in-progress lock expire when this invocation would time out."""
        self._config.register_lambda_context(lambda_context)

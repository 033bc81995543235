"""A local Lambda runtime for SQS event sources: receive a batch, invoke the real handler with an
event of AWS's exact shape and a counting-down context, delete what succeeded.

Handlers run either in this process (the integration tests, under moto's in-process mock) or,
as on Lambda, each function in its own worker process with its own environment, its own warm
state and its logs in its own file (the sandbox).

Failed records stay on the queue and return after the visibility timeout; the queue's redrive
policy (applied by SQS, here moto) moves them to the DLQ after maxReceiveCount receives. The
sandbox may shorten the wait before a failed record returns (`retry_after_seconds`): AWS waits
the full visibility timeout, which would make a local demo of retries take many minutes.
"""

from __future__ import annotations

import contextlib
import importlib.util
import multiprocessing
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3

from portdocs_sandbox.stack import ACCOUNT_ID, EventSource, LocalFunction, Stack

# One invocation at a time in this process: each sees exactly its own function's environment.
_INVOKE_LOCK = threading.Lock()


class LocalLambdaContext:
    """The attributes and the clock Lambda gives a handler."""

    def __init__(self, function: LocalFunction, region: str, timeout: float | None = None) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function.name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = time.monotonic() + (function.timeout if timeout is None else timeout)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class BatchResult:
    received: int
    failed: int


def load_handler(function: LocalFunction) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    module_name, attribute = function.handler.rsplit(".", 1)
    path = function.code_dir / f"{module_name}.py"
    spec = importlib.util.spec_from_file_location(f"portdocs_function_{function.logical_id}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attribute)


def sqs_event(messages: list[dict[str, Any]], queue_url: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS poller sends, record for record."""
    queue_name = queue_url.rstrip("/").rsplit("/", 1)[-1]
    arn = f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{queue_name}"
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": message.get("MessageAttributes", {}),
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


@contextlib.contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def lambda_environment(function: LocalFunction, region: str, extra: dict[str, str]) -> dict[str, str]:
    """The variables Lambda sets, the runtime's extras (endpoint, credentials), the function's own."""
    return {
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        **extra,
        **function.environment,
    }


class InProcessInvoker:
    """Runs handlers in this process, one at a time, each under its function's environment."""

    def __init__(self, stack: Stack, environment: dict[str, str]) -> None:
        self._stack = stack
        self._environment = environment
        self.handlers = {logical_id: load_handler(f) for logical_id, f in stack.functions.items()}

    def invoke(self, function: LocalFunction, event: dict[str, Any]) -> dict[str, Any]:
        with _INVOKE_LOCK, _environment(lambda_environment(function, self._stack.region, self._environment)):
            return self.handlers[function.logical_id](event, LocalLambdaContext(function, self._stack.region))

    def close(self) -> None:
        pass


def _worker_main(
    function: LocalFunction, region: str, environment: dict[str, str], log_path: str, connection: Connection
) -> None:
    """A function's execution environment: its variables, its warm state, its log stream."""
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the worker
    sys.stdout = sys.stderr = log
    os.environ.update(environment)
    handler = load_handler(function)
    while (event := connection.recv()) is not None:
        try:
            connection.send({"response": handler(event, LocalLambdaContext(function, region))})
        except Exception as error:  # reported to the poller as a failed invocation, as Lambda does
            traceback.print_exc()
            connection.send({"errorType": type(error).__name__, "errorMessage": str(error)})


class IsolatedInvoker:
    """One worker process per function, started on first use and replaced after a timeout."""

    def __init__(self, stack: Stack, environment: dict[str, str], log_dir: Path) -> None:
        self._stack = stack
        self._environment = environment
        self._log_dir = log_dir
        self._workers: dict[str, tuple[multiprocessing.process.BaseProcess, Connection]] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def log_path(self, function: LocalFunction) -> Path:
        return self._log_dir / f"{function.logical_id}.log"

    def invoke(self, function: LocalFunction, event: dict[str, Any]) -> dict[str, Any]:
        process, connection = self._worker(function)
        connection.send(event)
        if not connection.poll(function.timeout):
            process.kill()  # Lambda ends a timed-out invocation and its execution environment
            del self._workers[function.logical_id]
            raise TimeoutError(f"{function.name} timed out after {function.timeout}s")
        result = connection.recv()
        if "errorType" in result:
            raise RuntimeError(f"{result['errorType']}: {result['errorMessage']}")
        return result["response"]

    def _worker(self, function: LocalFunction) -> tuple[multiprocessing.process.BaseProcess, Connection]:
        if function.logical_id not in self._workers:
            spawn = multiprocessing.get_context("spawn")  # a fresh interpreter, as a new Lambda environment
            parent, child = spawn.Pipe()
            environment = lambda_environment(function, self._stack.region, self._environment)
            process = spawn.Process(
                target=_worker_main,
                args=(function, self._stack.region, environment, str(self.log_path(function)), child),
                daemon=True,
                name=f"lambda-{function.logical_id}",
            )
            process.start()
            self._workers[function.logical_id] = (process, parent)
        return self._workers[function.logical_id]

    def close(self) -> None:
        for process, connection in self._workers.values():
            with contextlib.suppress(OSError):
                connection.send(None)
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
        self._workers.clear()


class LocalRuntime:
    def __init__(
        self,
        stack: Stack,
        retry_after_seconds: int | None = None,
        endpoint_url: str | None = None,
        environment: dict[str, str] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        """`log_dir` set: each function runs in its own worker process, logging there."""
        self.stack = stack
        self.retry_after_seconds = retry_after_seconds
        self._sqs = boto3.client("sqs", region_name=stack.region, endpoint_url=endpoint_url)
        self.invoker: InProcessInvoker | IsolatedInvoker = (
            IsolatedInvoker(stack, environment or {}, log_dir)
            if log_dir
            else InProcessInvoker(stack, environment or {})
        )

    def source_for(self, function_logical_id: str) -> EventSource:
        return next(s for s in self.stack.event_sources if s.function == function_logical_id)

    def poll_once(self, source: EventSource, wait_seconds: int = 0) -> BatchResult:
        """One poll of one event source: at most one batch, gathered within the batching window."""
        messages = self._receive_batch(source, wait_seconds)
        if not messages:
            return BatchResult(0, 0)
        function = self.stack.functions[source.function]
        try:
            response = self.invoker.invoke(function, sqs_event(messages, source.queue_url, self.stack.region))
            failed_ids = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        except Exception:
            # A handler that raises or times out fails the whole batch, as on Lambda.
            failed_ids = {m["MessageId"] for m in messages}
        if not source.report_batch_item_failures and failed_ids:
            failed_ids = {m["MessageId"] for m in messages}
        succeeded = [m for m in messages if m["MessageId"] not in failed_ids]
        for start in range(0, len(succeeded), 10):
            self._sqs.delete_message_batch(
                QueueUrl=source.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(succeeded[start : start + 10])
                ],
            )
        if self.retry_after_seconds is not None:
            for message in messages:
                if message["MessageId"] in failed_ids:
                    self._sqs.change_message_visibility(
                        QueueUrl=source.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=self.retry_after_seconds,
                    )
        return BatchResult(len(messages), len(failed_ids))

    def _receive_batch(self, source: EventSource, wait_seconds: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        window_ends = time.monotonic() + source.batching_window_seconds
        while len(messages) < source.batch_size:
            received = self._sqs.receive_message(
                QueueUrl=source.queue_url,
                MaxNumberOfMessages=min(10, source.batch_size - len(messages)),
                WaitTimeSeconds=wait_seconds if not messages else 0,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages.extend(received)
            if not received or time.monotonic() >= window_ends:
                break
        return messages

    def drain(self, max_batches: int = 100) -> int:
        """Polls every event source until all are empty; returns the number of records handled."""
        handled = 0
        for _ in range(max_batches):
            results = [self.poll_once(source) for source in self.stack.event_sources]
            if not any(r.received for r in results):
                return handled
            handled += sum(r.received for r in results)
        return handled

    def serve(self, stop: threading.Event, wait_seconds: int = 1) -> list[threading.Thread]:
        """One poller thread per event source, like Lambda's pollers, until `stop` is set."""

        def loop(source: EventSource) -> None:
            while not stop.is_set():
                try:
                    self.poll_once(source, wait_seconds=wait_seconds)
                except Exception:  # keep polling, as Lambda's poller does
                    time.sleep(1)

        threads = [
            threading.Thread(target=loop, args=(s,), daemon=True, name=f"poller-{s.function}")
            for s in self.stack.event_sources
        ]
        for thread in threads:
            thread.start()
        return threads

    def close(self) -> None:
        self.invoker.close()

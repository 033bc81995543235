"""A local Lambda runtime for SQS event sources: receive a batch, invoke the real handler with an
event of AWS's exact shape and a counting-down context, delete what succeeded.

Handlers run either in this process (the integration tests, under moto's in-process mock) or,
as on Lambda, each function in its own worker process with its own environment, its own warm
state and its logs in its own file (the sandbox).

Failed records stay on the queue and return after the visibility timeout; the queue's redrive
policy (applied by SQS, here moto) moves them to the DLQ after maxReceiveCount receives. The
sandbox may shorten the wait before a failed record returns (`retry_after_seconds`): AWS waits
the full visibility timeout, which would make a local demo of retries take many minutes.

Two opt-in hostilities, for soak tests: `Chaos` kills a worker mid-invocation at random (as an
execution environment can die on Lambda), and `duplicate_intake_deliveries` delivers every S3
event notification twice (S3 delivers at least once).
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import logging
import math
import multiprocessing
import os
import random
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from portdocs_sandbox.stack import ACCOUNT_ID, EventSource, HttpRoute, LocalFunction, Schedule, Stack

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

# API Gateway's HTTP APIs take request bodies up to 10 MB.
HTTP_API_MAX_BODY = 10 * 1024 * 1024
# One invocation at a time in this process: each sees exactly its own function's environment.
_INVOKE_LOCK = threading.Lock()


class LocalLambdaContext:
    """The attributes and the clock Lambda gives a handler."""

    def __init__(self, function: LocalFunction, region: str, timeout: float | None = None) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function.name}"
        self.memory_limit_in_mb = function.memory_mb
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


class EnvironmentDied(RuntimeError):
    """The worker running an invocation died (killed, crashed) before it answered."""

    def __init__(self, message: str, in_progress_seconds: float) -> None:
        super().__init__(message)
        # How long the dead invocation's deadline still had to run: in-progress locks it took
        # (Powertools idempotency) hold until then.
        self.in_progress_seconds = in_progress_seconds


@dataclass(frozen=True)
class Chaos:
    """Kills a function's worker mid-invocation: with probability `kill_rate` per invocation,
    after a random delay of up to `max_delay_seconds` (if the invocation is still running)."""

    kill_rate: float
    max_delay_seconds: float = 2.0
    seed: int | None = None


def load_handler(function: LocalFunction) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    module_name, attribute = function.handler.rsplit(".", 1)
    path = function.code_dir / f"{module_name}.py"
    spec = importlib.util.spec_from_file_location(f"portdocs_function_{function.logical_id}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attribute)


def lambda_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute as Lambda hands it over (camelCase, list fields always there), not as
    ReceiveMessage answers."""
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": value.get("BinaryValue"),
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": value.get("BinaryListValues", []),
        "dataType": value["DataType"],
    }


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
                "messageAttributes": {
                    name: lambda_attribute(value)
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


def _is_s3_notification(body: str) -> bool:
    try:
        message = json.loads(body)
    except ValueError:
        return False
    return isinstance(message, dict) and any(
        isinstance(r, dict) and r.get("eventSource") == "aws:s3" for r in message.get("Records") or []
    )


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
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_LOG_FORMAT": function.log_format,
        **({"AWS_LAMBDA_LOG_LEVEL": function.log_level} if function.log_level else {}),
        **extra,
        **function.environment,
    }


class Invoker(Protocol):
    """Runs one function on one event: in this process, or in a worker process of its own."""

    def invoke(self, function: LocalFunction, event: dict[str, Any]) -> dict[str, Any]: ...

    def close(self) -> None: ...


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
    _lambda_root_logger(environment)
    handler = load_handler(function)
    while (event := connection.recv()) is not None:
        try:
            connection.send({"response": handler(event, LocalLambdaContext(function, region))})
        except Exception as error:  # reported to the poller as a failed invocation, as Lambda does
            traceback.print_exc()
            connection.send({"errorType": type(error).__name__, "errorMessage": str(error)})


def _lambda_root_logger(environment: dict[str, str]) -> None:
    """As Lambda's Python runtime sets up logging before it imports a handler: a handler on the root
    logger writing to the log stream, at AWS_LAMBDA_LOG_LEVEL when the LoggingConfig sets one. Any
    library's log record at that level reaches the log stream, as it would on Lambda."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("[%(levelname)s]\t%(asctime)s\t%(name)s\t%(message)s"))
    root.addHandler(handler)
    if environment.get("AWS_LAMBDA_LOG_LEVEL"):
        root.setLevel(environment["AWS_LAMBDA_LOG_LEVEL"])  # DEBUG, INFO, WARN, ERROR: all Python level names


class IsolatedInvoker:
    """One worker process per function, started on first use and replaced once it has died,
    timed out or been killed (a fresh interpreter, as Lambda gives a new execution environment)."""

    def __init__(
        self, stack: Stack, environment: dict[str, str], log_dir: Path, chaos: Chaos | None = None
    ) -> None:
        self._stack = stack
        self._environment = environment
        self._log_dir = log_dir
        self._workers: dict[str, tuple[multiprocessing.process.BaseProcess, Connection]] = {}
        self._chaos: Chaos | None = None
        self._random = random.Random()
        self.chaos = chaos
        self.invocations = 0
        self.kills_armed = 0  # invocations chaos chose; a kill is due only if they outlast its delay
        self.kills = 0  # workers killed by chaos mid-invocation
        self.replaced = 0  # workers that died, timed out or were killed, then replaced
        # (function logical id, seconds) of every invocation, failed ones too: what Lambda bills is
        # each invocation's wall time (bench/bulk.py prices them).
        self.durations: list[tuple[str, float]] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    @property
    def chaos(self) -> Chaos | None:
        return self._chaos

    @chaos.setter
    def chaos(self, chaos: Chaos | None) -> None:
        self._chaos = chaos
        if chaos is not None:
            self._random.seed(chaos.seed)

    def log_path(self, function: LocalFunction) -> Path:
        return self._log_dir / f"{function.logical_id}.log"

    def invoke(self, function: LocalFunction, event: dict[str, Any]) -> dict[str, Any]:
        process, connection = self._worker(function)
        self.invocations += 1
        started = time.monotonic()
        killer = self._arm_chaos(process)
        try:
            connection.send(event)
            if not connection.poll(function.timeout):
                self._discard(function)  # Lambda ends a timed-out invocation and its execution environment
                raise TimeoutError(f"{function.name} timed out after {function.timeout}s")
            result = connection.recv()
        except (EOFError, OSError) as error:  # the pipe broke: the worker is gone, the invocation with it
            self._discard(function)
            remaining = max(0.0, function.timeout - (time.monotonic() - started))
            raise EnvironmentDied(
                f"{function.name}'s worker died mid-invocation ({type(error).__name__})", remaining
            ) from None
        finally:
            self.durations.append((function.logical_id, time.monotonic() - started))
            if killer is not None:
                killer.cancel()
        if "errorType" in result:
            raise RuntimeError(f"{result['errorType']}: {result['errorMessage']}")
        return result["response"]

    def _arm_chaos(self, process: multiprocessing.process.BaseProcess) -> threading.Timer | None:
        chaos = self._chaos
        if chaos is None or self._random.random() >= chaos.kill_rate:
            return None
        self.kills_armed += 1

        def kill() -> None:
            if process.is_alive():
                process.kill()
                self.kills += 1

        timer = threading.Timer(self._random.uniform(0, chaos.max_delay_seconds), kill)
        timer.daemon = True
        timer.start()
        return timer

    def _worker(self, function: LocalFunction) -> tuple[multiprocessing.process.BaseProcess, Connection]:
        existing = self._workers.get(function.logical_id)
        if existing is not None and not existing[0].is_alive():
            # Died between invocations (killed just after answering): the next event gets a new one.
            self._discard(function)
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
            child.close()  # only the worker holds this end: its death is then EOF on ours
            self._workers[function.logical_id] = (process, parent)
        return self._workers[function.logical_id]

    def _discard(self, function: LocalFunction) -> None:
        process, connection = self._workers.pop(function.logical_id)
        if process.is_alive():
            process.kill()
        process.join(timeout=5)
        connection.close()
        self.replaced += 1

    def close(self) -> None:
        for process, connection in self._workers.values():
            with contextlib.suppress(OSError):
                connection.send(None)
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
            connection.close()
        self._workers.clear()


class LocalRuntime:
    def __init__(
        self,
        stack: Stack,
        retry_after_seconds: int | None = None,
        endpoint_url: str | None = None,
        environment: dict[str, str] | None = None,
        log_dir: Path | None = None,
        chaos: Chaos | None = None,
        duplicate_intake_deliveries: bool = False,
    ) -> None:
        """`log_dir` set: each function runs in its own worker process, logging there (and
        `chaos`, if given, kills those workers at random)."""
        self.stack = stack
        self.retry_after_seconds = retry_after_seconds
        self.duplicate_intake_deliveries = duplicate_intake_deliveries
        self.duplicates_sent = 0
        self._duplicated: set[str] = set()
        self.random = random.Random()  # a duplicate's delay; seed it to replay a soak
        self._sqs = boto3.client("sqs", region_name=stack.region, endpoint_url=endpoint_url)
        self._http_servers: list[BaseWSGIServer] = []
        self.invoker: Invoker = (
            IsolatedInvoker(stack, environment or {}, log_dir, chaos)
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
        if self.duplicate_intake_deliveries and source.queue_url == self.stack.outputs.get("IntakeQueueUrl"):
            self._deliver_again(source, messages)
        function = self.stack.functions[source.function]
        hold_seconds = 0.0
        try:
            response = self.invoker.invoke(function, sqs_event(messages, source.queue_url, self.stack.region))
            failed_ids = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        except Exception as error:
            # A handler that raises, times out or loses its environment fails the whole batch, as on Lambda.
            failed_ids = {m["MessageId"] for m in messages}
            if isinstance(error, EnvironmentDied):
                hold_seconds = error.in_progress_seconds
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
            # Never back before a dead invocation's deadline: on AWS the visibility timeout (6x
            # the function's timeout) guarantees that, and the locks that invocation took (the
            # idempotency record's in-progress expiry) last until then. Sooner, every retry
            # would find the lock held and the record would reach the DLQ without a real try.
            visibility = max(self.retry_after_seconds, math.ceil(hold_seconds))
            for message in messages:
                if message["MessageId"] in failed_ids:
                    self._sqs.change_message_visibility(
                        QueueUrl=source.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=visibility,
                    )
        return BatchResult(len(messages), len(failed_ids))

    def _deliver_again(self, source: EventSource, messages: list[dict[str, Any]]) -> None:
        """Sends each S3 event notification a second time, once, as S3's at-least-once delivery
        may: a new SQS message with the same body, arriving now or a few seconds later."""
        for message in messages:
            body = message["Body"]
            if body in self._duplicated or not _is_s3_notification(body):
                continue
            self._duplicated.add(body)
            self._sqs.send_message(
                QueueUrl=source.queue_url, MessageBody=body, DelaySeconds=self.random.randint(0, 5)
            )
            self.duplicates_sent += 1

    def _receive_batch(self, source: EventSource, wait_seconds: int) -> list[dict[str, Any]]:
        messages: list[Any] = []
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
        """Polls every event source until all are empty, delayed copies (records handed back for
        later) included; returns the number of records handled."""
        handled = 0
        for _ in range(max_batches):
            results = [self.poll_once(source) for source in self.stack.event_sources]
            if not any(r.received for r in results):
                if not self._delayed():
                    return handled
                time.sleep(0.5)
            handled += sum(r.received for r in results)
        return handled

    def _delayed(self) -> bool:
        return any(
            int(
                self._sqs.get_queue_attributes(
                    QueueUrl=source.queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
                )["Attributes"]["ApproximateNumberOfMessagesDelayed"]
            )
            for source in self.stack.event_sources
        )

    def invoke_scheduled(self, function_logical_id: str) -> dict[str, Any]:
        """One run of a scheduled function, with the event EventBridge Scheduler sends."""
        function = self.stack.functions[function_logical_id]
        return self.invoker.invoke(function, {"source": "aws.scheduler", "detail-type": "Scheduled Event"})

    def serve(self, stop: threading.Event, wait_seconds: int = 1) -> list[threading.Thread]:
        """One poller thread per event source, like Lambda's pollers, and one per schedule, until
        `stop` is set."""

        def every(schedule: Schedule) -> None:
            while not stop.wait(schedule.every_seconds):
                with contextlib.suppress(Exception):  # the next run tries again, as the scheduler would
                    self.invoke_scheduled(schedule.function)

        def loop(source: EventSource) -> None:
            while not stop.is_set():
                try:
                    self.poll_once(source, wait_seconds=wait_seconds)
                except Exception:  # keep polling, as Lambda's poller does
                    time.sleep(1)

        threads = [
            threading.Thread(target=loop, args=(s,), daemon=True, name=f"poller-{s.function}")
            for s in self.stack.event_sources
        ] + [
            threading.Thread(target=every, args=(s,), daemon=True, name=f"schedule-{s.function}")
            for s in self.stack.schedules
        ]
        for thread in threads:
            thread.start()
        return threads

    def http_event(self, route: HttpRoute, request: Request) -> dict[str, Any]:
        """The event an HTTP API (payload format 2.0) sends its function for one request: the body
        as text when it is UTF-8 JSON or text, else base64, as API Gateway does."""
        raw = request.get_data(cache=False)
        content_type = request.headers.get("content-type", "")
        textual = content_type.startswith(("application/json", "text/"))
        try:
            body, encoded = (
                (raw.decode("utf-8"), False) if textual else (base64.b64encode(raw).decode(), True)
            )
        except UnicodeDecodeError:
            body, encoded = base64.b64encode(raw).decode(), True
        now = time.time()
        return {
            "version": "2.0",
            "routeKey": f"{route.method} {route.path}",
            "rawPath": request.path,
            "rawQueryString": request.query_string.decode(),
            "headers": {name.lower(): value for name, value in request.headers.items()},
            "requestContext": {
                "accountId": ACCOUNT_ID,
                "apiId": "local",
                "domainName": request.host,
                "domainPrefix": request.host.split(".")[0],
                "http": {
                    "method": request.method,
                    "path": request.path,
                    "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                    "sourceIp": request.remote_addr or "127.0.0.1",
                    "userAgent": request.headers.get("user-agent", ""),
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": f"{route.method} {route.path}",
                "stage": "$default",
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000),
            },
            "body": body,
            "isBase64Encoded": encoded,
        }

    def serve_http(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """An HTTP API in front of the template's HttpApi routes, on loopback: a request that names
        no route (another path or method) is answered 404 without invoking anything, a body over
        API Gateway's 10 MB limit 413, as AWS answers them. Returns its base URL."""
        routes = {(r.method, r.path): r for r in self.stack.http_routes}

        def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            request = Request(environ)
            route = routes.get((request.method, request.path))
            if route is None:
                response = Response('{"message":"Not Found"}', status=404, content_type="application/json")
            elif (request.content_length or 0) > HTTP_API_MAX_BODY:
                response = Response('{"message":"Request Entity Too Large"}', status=413)
            else:
                response = self._invoke_http(route, request)
            return response(environ, start_response)

        server = make_server(host, port, application, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True, name="http-api").start()
        self._http_servers.append(server)
        return f"http://{host}:{server.port}"

    def _invoke_http(self, route: HttpRoute, request: Request) -> Response:
        try:
            answer = self.invoker.invoke(
                self.stack.functions[route.function], self.http_event(route, request)
            )
        except Exception:  # a crashed, timed-out or killed function: API Gateway answers 500
            return Response(
                '{"message":"Internal Server Error"}', status=500, content_type="application/json"
            )
        return Response(
            answer.get("body", ""),
            status=int(answer.get("statusCode", 200)),
            headers=answer.get("headers") or {},
        )

    def close(self) -> None:
        for server in self._http_servers:
            server.shutdown()
            server.server_close()
        self.invoker.close()

"""A warm batch of 10 against a warm batch of 1, for each function, with Telnyx answering every call
in 200 ms: records worked on together (RECORD_CONCURRENCY=5, the default) against the naive
baseline of one record at a time (RECORD_CONCURRENCY=1), measured in the same run.

Real handlers in fresh processes, moto in server mode in a process of its own (AWS calls are I/O
to the handler, as in Lambda), the Telnyx emulator over HTTP with a 200 ms latency on the upload
request, the files service and the association. Each child warms its function with one batch,
then alternates batches of 1 and 10 made of new documents (a repeat would be a duplicate) and
prints the medians. Prints one line per function.

    .venv/bin/python bench/batch_ratio.py [--rounds 5] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import boto3
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "portdocs"), str(ROOT / "sandbox")]

from portdocs_sandbox.runtime import LocalLambdaContext, load_handler, sqs_event  # noqa: E402
from portdocs_sandbox.stack import LocalFunction, provision  # noqa: E402
from portdocs_sandbox.telnyx_emulator import Fault, TelnyxEmulator  # noqa: E402

LATENCY_SECONDS = 0.2
PORT_REQUEST = "3f9a8c2e-0b1d-4e5f-9a6b-7c8d9e0f1a2b"
SUB_REQUEST = "8d7c6b5a-4e3f-4a1b-9c2d-1e0f9a8b7c6d"
LOA = (ROOT / "samples" / "Letter of Authorization.pdf").read_bytes()
AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}
FUNCTIONS = {"uploader": "UploaderFunction", "associator": "AssociatorFunction"}


# -- the child: one function, one concurrency, warm batches --------------------------------------


class Child:
    def __init__(self, setup: dict[str, Any]) -> None:
        self.region = setup["region"]
        self.outputs = setup["outputs"]
        self.functions = {
            name: LocalFunction(**{**f, "code_dir": Path(f["code_dir"])})
            for name, f in setup["functions"].items()
        }
        self.handlers = {name: load_handler(function) for name, function in self.functions.items()}
        self.s3, self.sqs = boto3.client("s3"), boto3.client("sqs")

    def invoke(self, logical_id: str, messages: list[dict[str, Any]]) -> float:
        queue = self.outputs["IntakeQueueUrl" if logical_id == "UploaderFunction" else "AssociationQueueUrl"]
        event = sqs_event(messages, queue, self.region)
        context = LocalLambdaContext(self.functions[logical_id], self.region)
        started = time.perf_counter()
        response = self.handlers[logical_id](event, context)
        elapsed = time.perf_counter() - started
        assert response == {"batchItemFailures": []}, response
        return elapsed

    def take(self, queue_output: str, count: int) -> list[dict[str, Any]]:
        """Exactly `count` messages off a queue, deleted there (the handler is invoked directly)."""
        queue_url = self.outputs[queue_output]
        messages: list[Any] = []  # SQS MessageTypeDefs, which sqs_event takes as dict[str, Any]
        deadline = time.monotonic() + 60
        while len(messages) < count:
            assert time.monotonic() < deadline, f"only {len(messages)} of {count} messages arrived"
            batch = self.sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(10, count - len(messages)),
                WaitTimeSeconds=1,
                AttributeNames=["All"],
            ).get("Messages", [])
            for message in batch:
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            messages.extend(batch)
        return messages

    def intake_messages(self, count: int) -> list[dict[str, Any]]:
        for _ in range(count):
            key = f"{PORT_REQUEST}/{SUB_REQUEST}/loa/bench-{uuid.uuid4()}.pdf"
            self.s3.put_object(Bucket=self.outputs["IntakeBucketName"], Key=key, Body=LOA)
        return self.take("IntakeQueueUrl", count)

    def association_messages(self, count: int) -> list[dict[str, Any]]:
        self.invoke("UploaderFunction", self.intake_messages(count))
        return self.take("AssociationQueueUrl", count)

    def batch(self, logical_id: str, count: int) -> float:
        if logical_id == "AssociatorFunction":
            return self.invoke(logical_id, self.association_messages(count))
        elapsed = self.invoke(logical_id, self.intake_messages(count))
        self.take("AssociationQueueUrl", count)  # what it queued, so later runs start clean
        return elapsed


def child(setup: dict[str, Any], function: str, rounds: int) -> None:
    runner = Child(setup)
    logical_id = FUNCTIONS[function]
    runner.batch(logical_id, 1)  # the cold start is another benchmark's business
    ones, tens = [], []
    for _ in range(rounds):
        ones.append(runner.batch(logical_id, 1))
        tens.append(runner.batch(logical_id, 10))
    print(json.dumps({"one": statistics.median(ones), "ten": statistics.median(tens)}))


# -- the parent: moto server, emulator, stack; one child per function and concurrency ------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{endpoint}/moto-api/", timeout=1)
            return server, endpoint
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "moto_server did not start"
            time.sleep(0.2)


def measure(
    setup: dict[str, Any], environment: dict[str, str], function: str, concurrency: int, rounds: int
) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", function, "--rounds", str(rounds)],
        input=json.dumps(setup),
        env={**environment, "RECORD_CONCURRENCY": str(concurrency)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"{function} (RECORD_CONCURRENCY={concurrency}) failed:\n{done.stderr[-3000:]}")
    # The handlers' own log lines share stdout; the figures are the last line.
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--latency", type=float, default=LATENCY_SECONDS, help="seconds Telnyx takes per call"
    )
    parser.add_argument("--child", choices=sorted(FUNCTIONS))
    args = parser.parse_args()
    if args.child:
        child(json.loads(sys.stdin.read()), args.child, args.rounds)
        return

    os.environ.update(AWS_ENVIRONMENT)
    moto, endpoint = start_moto()
    try:
        with TelnyxEmulator(api_user=None, api_token=None, api_key="bench") as emulator:
            emulator.seed(PORT_REQUEST, SUB_REQUEST)
            for endpoint_name in ("upload_requests", "files", "supporting_documents"):
                emulator.inject(Fault(endpoint=endpoint_name, latency=args.latency, times=None))
            stack = provision(
                stack_name="portdocs-bench",
                parameters={"TelnyxApiBaseUrl": emulator.api_url, "AllowedUploadHosts": emulator.files_host},
                endpoint_url=endpoint,
            )
            # S3's test event, sent when the notification was set, is no document to measure.
            boto3.client("sqs", endpoint_url=endpoint).purge_queue(QueueUrl=stack.outputs["IntakeQueueUrl"])
            setup = {
                "region": stack.region,
                "outputs": stack.outputs,
                "functions": {
                    logical_id: {
                        **asdict(stack.functions[logical_id]),
                        "code_dir": str(stack.functions[logical_id].code_dir),
                    }
                    for logical_id in FUNCTIONS.values()
                },
            }
            base = {
                k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "TELNYX_"))
            }
            environment = {
                **base,
                **AWS_ENVIRONMENT,
                **stack.functions["UploaderFunction"].environment,
                "AWS_ENDPOINT_URL": endpoint,
                "TELNYX_CREDENTIALS_SECRET_ARN": "",
                "TELNYX_API_KEY": "bench",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
            }
            for function in FUNCTIONS:
                naive = measure(setup, environment, function, 1, args.rounds)
                together = measure(setup, environment, function, 5, args.rounds)
                print(
                    f"batch of 10 vs 1, {function} (Telnyx {args.latency * 1000:.0f} ms a call): "
                    f"5 at a time {together['ten'] / together['one']:.1f}x "
                    f"({together['one'] * 1000:.0f} ms, {together['ten'] * 1000:.0f} ms); "
                    f"one at a time {naive['ten'] / naive['one']:.1f}x "
                    f"({naive['one'] * 1000:.0f} ms, {naive['ten'] * 1000:.0f} ms); goal at most 3x"
                )
    finally:
        moto.terminate()
        moto.wait(timeout=30)


if __name__ == "__main__":
    main()

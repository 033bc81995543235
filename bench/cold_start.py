"""Cold start of the uploader against the floor for any Python Lambda on boto3 and requests,
measured in the same run, each sample in a fresh Python process.

- floor: import boto3 and requests, make the three clients (S3, SQS, DynamoDB) and one
  requests.Session: what any function of this kind pays;
- uploader: import the uploader's handler (functions/uploader/app.py, with the layer package on
  the path) and run its first invocation on S3's test event (no network: the event carries no
  document), which builds every client and adapter as a real first invocation does.

Python's own start-up is the same for both and is left out: each child measures from its first
line to the end of its work. Both sides import from compiled bytecode, as Lambda does from the
built layer (layers/portdocs/Makefile compiles it): the children share a bytecode cache, filled by
a first sample of each side that is not counted (whatever PYTHONDONTWRITEBYTECODE says here).
Prints one line with the medians and their ratio.

    .venv/bin/python bench/cold_start.py [--runs 9]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_LAMBDA_FUNCTION_NAME": "portdocs-bench-UploaderFunction",
    "POWERTOOLS_SERVICE_NAME": "portdocs-uploader",
    "POWERTOOLS_METRICS_NAMESPACE": "portdocs",
    "TELNYX_API_KEY": "bench",
    "ASSOCIATION_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-association",
    "INTAKE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-intake",
    "INTAKE_BUCKET": "bench-intake",
    "DOCUMENTS_TABLE": "bench-documents",
    "IDEMPOTENCY_TABLE": "bench-idempotency",
    "NOTIFICATIONS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-notifications",
    "PORTING_ORDERS_TABLE": "bench-orders",
    "ACTION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:bench-actions",
}

FLOOR = """
import time
started = time.perf_counter()
import boto3
import requests
session = boto3.session.Session()
clients = [session.client(name) for name in ("s3", "sqs", "dynamodb")]
http = requests.Session()
print(time.perf_counter() - started)
"""


def lambda_context(function_name: str, remaining_ms: int) -> str:
    """The source of a class with the attributes and the clock Lambda gives a handler, for a child."""
    return f"""
class Context:
    function_name = {function_name!r}
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + {function_name!r}
    memory_limit_in_mb = 512
    aws_request_id = "bench"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"
    def get_remaining_time_in_millis(self):
        return {remaining_ms}
"""


UPLOADER = """
import time
started = time.perf_counter()
import sys, json
sys.path[:0] = [{code!r}, {layer!r}]
from app import lambda_handler
event = json.loads(open({event!r}).read())
{context}
response = lambda_handler(event, Context())
assert response == {{"batchItemFailures": []}}, response
print(time.perf_counter() - started, file=sys.stderr)
"""


def sample(code: str, bytecode: str) -> float:
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "POWERTOOLS_")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**environment, **ENVIRONMENT, "PYTHONPYCACHEPREFIX": bytecode},
        capture_output=True,
        text=True,
        check=True,
    )
    # The uploader's own log lines go to stdout; its timing to stderr.
    return float((done.stderr or done.stdout).strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    uploader = UPLOADER.format(
        code=str(ROOT / "functions" / "uploader"),
        layer=str(ROOT / "layers" / "portdocs"),
        event=str(ROOT / "events" / "intake-s3-test-event.json"),
        context=lambda_context("portdocs-bench-UploaderFunction", 120_000),
    )
    floors, uploads = [], []
    with tempfile.TemporaryDirectory(prefix="portdocs-bytecode-") as bytecode:
        sample(FLOOR, bytecode)
        sample(uploader, bytecode)
        for _ in range(args.runs):  # interleaved, so a busy moment costs both alike
            floors.append(sample(FLOOR, bytecode))
            uploads.append(sample(uploader, bytecode))
    floor, cold = statistics.median(floors), statistics.median(uploads)
    print(
        json.dumps({"floor_ms": round(floor * 1000), "uploader_ms": round(cold * 1000)})
        if os.environ.get("BENCH_JSON")
        else f"cold start: uploader {cold * 1000:.0f} ms vs floor {floor * 1000:.0f} ms "
        f"(medians of {args.runs}): "
        f"{cold / floor:.2f}x"
    )


if __name__ == "__main__":
    main()

"""The webhook receiver (functions/notifications): its cold start and its time to a 2xx, against
a naive receiver measured in the same run, each cold sample in a fresh Python process, against
moto server (SQS, Secrets Manager) on loopback.

- naive: a handler that queues the body it was given, unverified (import boto3, make the SQS
  client, send the message): the least any receiver that answers only after queueing pays;
- receiver: import the receiver's handler and run its first invocation on a signed Telnyx
  notification (reads the public key from its secret, verifies Ed25519, validates, queues).

Each child measures from its first line to the 2xx. Warm: the same handler, invoked again in the
same process (fresh timestamps, same signature rule), median of 50. Prints one line.

    .venv/bin/python bench/receiver.py [--runs 9]
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from cold_start import ENVIRONMENT, lambda_context  # noqa: E402 - the uploader bench's, shared

NAIVE = """
import time
started = time.perf_counter()
import boto3
queue = boto3.session.Session().client("sqs")
queue.send_message(QueueUrl={queue!r}, MessageBody={body!r})
print(time.perf_counter() - started)
"""

RECEIVER = """
import time
started = time.perf_counter()
import sys, json
sys.path[:0] = [{code!r}, {layer!r}]
from app import lambda_handler
events = json.loads(open({events!r}).read())
{context}
answer = lambda_handler(events[0], Context())
cold = time.perf_counter() - started
assert answer["statusCode"] == 202, answer
warm = []
for event in events[1:]:
    begun = time.perf_counter()
    assert lambda_handler(event, Context())["statusCode"] == 202
    warm.append(time.perf_counter() - begun)
warm.sort()
print(cold, warm[len(warm) // 2] if warm else 0.0, file=sys.stderr)
"""


def signed_events(key: Ed25519PrivateKey, count: int) -> list[dict[str, object]]:
    events = []
    for index in range(count):
        body = json.dumps(
            {
                "data": {
                    "event_type": "porting_order.status_changed",
                    "id": f"bench-{index}",
                    "occurred_at": "2026-12-04T10:00:00Z",
                    "payload": {"id": "bench-order", "status": {"value": "in-process", "details": []}},
                    "record_type": "event",
                },
                "meta": {"attempt": 1},
            }
        ).encode()
        stamp = str(int(time.time()))
        events.append(
            {
                "version": "2.0",
                "requestContext": {"http": {"method": "POST", "path": "/telnyx/porting"}},
                "headers": {
                    "content-type": "application/json",
                    "telnyx-timestamp": stamp,
                    "telnyx-signature-ed25519": base64.b64encode(
                        key.sign(f"{stamp}|".encode() + body)
                    ).decode(),
                },
                "body": body.decode(),
                "isBase64Encoded": False,
            }
        )
    return events


def run(code: str, environment: dict[str, str], bytecode: str) -> list[float]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**inherited, **environment, "PYTHONPYCACHEPREFIX": bytecode},
        capture_output=True,
        text=True,
        check=True,
    )
    return [float(x) for x in (done.stderr or done.stdout).strip().splitlines()[-1].split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    aws = {**ENVIRONMENT, "AWS_ENDPOINT_URL": endpoint, "POWERTOOLS_SERVICE_NAME": "portdocs-notifications"}
    session = boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
    )
    queue = session.client("sqs", endpoint_url=endpoint).create_queue(QueueName="bench-notifications")[
        "QueueUrl"
    ]
    key = Ed25519PrivateKey.generate()
    public = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    secret = session.client("secretsmanager", endpoint_url=endpoint).create_secret(
        Name="bench-webhook-key", SecretString=json.dumps({"public_key": public})
    )["ARN"]
    aws |= {
        "NOTIFICATIONS_QUEUE_URL": queue,
        "WEBHOOK_KEY_SECRET_ARN": secret,
        "AWS_LAMBDA_FUNCTION_NAME": "portdocs-bench-NotificationsFunction",
    }
    naive_code = NAIVE.format(queue=queue, body="{}")
    colds, naives, warms = [], [], []
    with tempfile.TemporaryDirectory(prefix="portdocs-bytecode-") as bytecode:
        for index in range(args.runs + 1):  # interleaved; the first of each fills the bytecode cache
            events_file = Path(bytecode) / f"events-{index}.json"
            events_file.write_text(json.dumps(signed_events(key, 51)))
            receiver_code = RECEIVER.format(
                code=str(ROOT / "functions" / "notifications"),
                layer=str(ROOT / "layers" / "portdocs"),
                events=str(events_file),
                context=lambda_context("portdocs-bench-NotificationsFunction", 10_000),
            )
            naive = run(naive_code, aws, bytecode)[0]
            cold, warm = run(receiver_code, aws, bytecode)
            if index:
                naives.append(naive)
                colds.append(cold)
                warms.append(warm)
    server.stop()
    naive, cold, warm = statistics.median(naives), statistics.median(colds), statistics.median(warms)
    print(
        f"webhook receiver: cold start to a 2xx {cold * 1000:.0f} ms vs naive unverified queueing "
        f"{naive * 1000:.0f} ms (medians of {args.runs}): {cold / naive:.2f}x; warm 2xx {warm * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()

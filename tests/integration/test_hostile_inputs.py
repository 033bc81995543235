"""Hostile inputs, end to end: both handlers under moto (resources from template.yaml) against
the Telnyx emulator over real HTTP. Every case asserts the documented outcome where it shows:
the ledger's state and reason, the intake object's `portdocs:status` tag, the batch response
and what Telnyx received (or did not).

A malformed message is rejected in the invocation that sees it, with a reason, and never
retried; a document ends in exactly one visible state; nothing from outside can make portdocs
attach the wrong file to a document."""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus, unquote_plus

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from portdocs import shapes, wiring
from portdocs.errors import PermanentError, TransientError
from portdocs.redelivery import DEAD_LETTER_REASON_ATTRIBUTE, FIRST_SENT_ATTRIBUTE, MAX_AGE_SECONDS
from portdocs.retrying import Deadline, with_retries
from portdocs.telnyx_credentials import StaticCredentials, TelnyxCredentials
from portdocs.telnyx_http import TelnyxHttp
from portdocs.telnyx_legacy import DraftPortRequestsApi, UploadForm
from portdocs_sandbox.runtime import LocalLambdaContext, LocalRuntime, sqs_event
from portdocs_sandbox.stack import provision
from portdocs_sandbox.telnyx_emulator import Emulated, Fault, TelnyxEmulator
from tests.support import (
    OTHER_SUB_REQUEST,
    PORT_REQUEST,
    SAMPLES,
    SETTING_NAMES,
    SUB_REQUEST,
    Pipeline,
    only,
    set_record_concurrency,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import PutObjectOutputTypeDef
    from mypy_boto3_sqs.type_defs import MessageTypeDef

LOA = (SAMPLES / "Letter of Authorization.pdf").read_bytes()
INVOICE = (SAMPLES / "losing-carrier-invoice.pdf").read_bytes()
OK: dict[str, list[Any]] = {"batchItemFailures": []}
UNKNOWN_PORT_REQUEST = "ffffffff-0000-4000-8000-000000000000"

Body = Callable[[Pipeline], str]


def reset(emulator: TelnyxEmulator) -> TelnyxEmulator:
    """The emulator as new: nothing received, stored or injected; the default credentials; the
    test draft port request seeded (as conftest's `emulator` fixture starts one)."""
    emulator.state = Emulated()
    emulator.credentials = {
        "api_user": "portdocs@example.com",
        "api_token": "emulator-token",
        "api_key": None,
    }
    emulator.seed(PORT_REQUEST, SUB_REQUEST, OTHER_SUB_REQUEST)
    return emulator


@pytest.fixture(scope="module")
def running_emulator() -> Iterator[TelnyxEmulator]:
    with TelnyxEmulator() as running:
        yield running


@pytest.fixture
def emulator(running_emulator: TelnyxEmulator) -> TelnyxEmulator:
    """Overrides conftest's `emulator` for this module (conftest's `pipeline` takes it from here):
    one emulator for the module, reset before each test, since stopping its two HTTP servers costs
    about a second per test. The AWS side (moto, the stack from template.yaml) is fresh per test."""
    return reset(running_emulator)


def key(
    document_type: str, file_name: str, sub_request: str = SUB_REQUEST, port_request: str = PORT_REQUEST
) -> str:
    return f"{port_request}/{sub_request}/{document_type}/{file_name}"


def rows(pipeline: Pipeline) -> list[dict[str, Any]]:
    return list(pipeline.ledger().values())


def row_for_key(pipeline: Pipeline, object_key: str) -> dict[str, Any]:
    return only([e for e in rows(pipeline) if e.get("source", {}).get("key") == object_key])


def row_for_version(pipeline: Pipeline, version_id: str) -> dict[str, Any]:
    return only([e for e in rows(pipeline) if e.get("source", {}).get("version_id") == version_id])


def version_tags(pipeline: Pipeline, object_key: str, version_id: str) -> dict[str, str]:
    tag_set = boto3.client("s3").get_object_tagging(
        Bucket=pipeline.bucket, Key=object_key, VersionId=version_id
    )
    return {t["Key"]: t["Value"] for t in tag_set["TagSet"]}


def association_id(url: str) -> str:
    """The ledger id of a plain association request (no intake object) for the test LOA target,
    written out as documents.association_document_id forms it."""
    return f"association:{PORT_REQUEST}/{SUB_REQUEST}/loa/{hashlib.sha256(url.encode()).hexdigest()[:24]}"


def upload_request(bucket: str, **fields: Any) -> str:
    message = {
        "bucket": bucket,
        "key": "inbox/scan-0042.pdf",
        "draft_port_request_id": PORT_REQUEST,
        "draft_sub_request_id": SUB_REQUEST,
        "document_type": "loa",
        **fields,
    }
    return json.dumps({k: v for k, v in message.items() if v is not None})


def association_request(url: str | None, **fields: Any) -> str:
    message = {
        "draft_port_request_id": PORT_REQUEST,
        "draft_sub_request_id": SUB_REQUEST,
        "document_type": "loa",
        "description": "",
        "url": url,
        **fields,
    }
    return json.dumps({k: v for k, v in message.items() if v is not None})


def s3_record(
    bucket: str, object_key: str | None, event_name: str = "ObjectCreated:Put", **object_fields: Any
) -> dict:
    return {
        "eventName": event_name,
        "s3": {"bucket": {"name": bucket}, "object": {"key": object_key, **object_fields}},
    }


_SEQUENCER = itertools.count(0x0055AED6DCD90281E5)


def s3_event(
    pipeline: Pipeline,
    object_key: str,
    version: PutObjectOutputTypeDef,
    size: int,
    event_name: str = "ObjectCreated:Put",
) -> str:
    """An S3 event notification exactly as S3 sends it for a versioned bucket (moto's lack
    versionId and sequencer): URL-encoded key, unquoted ETag, the version id of the put."""
    s3_object: dict[str, Any] = {
        "key": quote_plus(object_key, safe="/"),
        "sequencer": f"{next(_SEQUENCER):018X}",
    }
    if event_name.startswith("ObjectCreated:"):
        s3_object |= {"size": size, "eTag": version["ETag"].strip('"')}
    s3_object["versionId"] = version["VersionId"]
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": pipeline.stack.region,
        "eventTime": "2026-11-27T09:12:31.318Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAJDPLRKLG7UEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.10"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "portdocs-intake",
            "bucket": {
                "name": pipeline.bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{pipeline.bucket}",
            },
            "object": s3_object,
        },
    }
    return json.dumps({"Records": [record]})


def put_versions(pipeline: Pipeline, object_key: str, *bodies: bytes) -> list[PutObjectOutputTypeDef]:
    """Puts each body as a new version of one key; moto's own notifications (which lack the
    version id) are taken off the intake queue so only the events a test builds are delivered."""
    versions = [pipeline.drop(object_key, body) for body in bodies]
    pipeline.receive("IntakeQueueUrl")
    return versions


def upload_then_queue(pipeline: Pipeline, object_key: str, body: bytes, **extra: Any) -> dict[str, Any]:
    """Drops a document and runs the uploader on it; returns the association message it queued."""
    pipeline.drop(object_key, body, **extra)
    response, _ = pipeline.invoke("uploader", [m["Body"] for m in pipeline.receive("IntakeQueueUrl")])
    assert response == OK
    return json.loads(only(pipeline.receive("AssociationQueueUrl"))["Body"])


def queued_copies(pipeline: Pipeline, queue_output: str) -> list[MessageTypeDef]:
    return (
        boto3.client("sqs")
        .receive_message(
            QueueUrl=pipeline.output(queue_output), MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        .get("Messages", [])
    )


SENT_AN_HOUR_AGO = str(int((time.time() - 3600) * 1000))


def invoke_records(
    pipeline: Pipeline,
    function: str,
    bodies: dict[str, str],
    timeout: float | None = None,
    attributes: dict[str, Any] | None = None,
    sent: str = SENT_AN_HOUR_AGO,
) -> set[str]:
    """Invokes a handler as Lambda's SQS poller would, in batches of the event source's size,
    with message ids of our choosing; returns the ids reported as batch item failures."""
    logical_id = {"uploader": "UploaderFunction", "associator": "AssociatorFunction"}[function]
    source = pipeline.runtime.source_for(logical_id)
    handler = pipeline.handlers[logical_id]
    items, failed = list(bodies.items()), set()
    for start in range(0, len(items), source.batch_size):
        messages = [
            {
                "MessageId": message_id,
                "ReceiptHandle": f"rh-{message_id}",
                "Body": body,
                "MD5OfBody": "0" * 32,
                "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": sent},
                "MessageAttributes": attributes or {},
            }
            for message_id, body in items[start : start + source.batch_size]
        ]
        event = sqs_event(messages, source.queue_url, pipeline.stack.region)
        context = LocalLambdaContext(pipeline.stack.functions[logical_id], pipeline.stack.region, timeout)
        failed |= {failure["itemIdentifier"] for failure in handler(event, context)["batchItemFailures"]}
    return failed


# -- one batch of cheap hostile inputs: one stack, each message rejected in the invocation that sees it -----
#
# A fresh stack per case costs about a second (botocore loads its service models again for every
# new session); these cases need nothing of their own, so they share one stack and are delivered in
# batches of the event source's size, each message under an id naming its case. Each case then
# asserts on its own message, row, object and URL.


@dataclass(frozen=True)
class Case:
    """One hostile input: `body` builds it from the stack (for HOSTILE_URLS, the URL), `reason` holds
    the parts the rejection's reason must contain."""

    body: Body
    reason: tuple[str, ...] = ()
    # The intake key the message names, when it names one.
    names: str | None = None


def cases(table: dict[str, Any]) -> list[Any]:
    return [pytest.param(name, id=name) for name in table]


SCHEMA_U = "upload-request.schema.json"
SCHEMA_S3 = "s3-notification.schema.json"
SCHEMA_A = "association-request.schema.json"

MALFORMED_INTAKE = {
    "records-of-integers": Case(lambda p: '{"Records": [1]}', (SCHEMA_S3, "Records[0] must be object")),
    "record-key-null": Case(
        lambda p: json.dumps({"Records": [s3_record(p.bucket, None)]}),
        (SCHEMA_S3, "s3.object.key must be string"),
    ),
    "records-empty": Case(lambda p: '{"Records": []}', (SCHEMA_S3, "at least 1 items")),
    "records-101": Case(
        lambda p: json.dumps({"Records": [s3_record(p.bucket, key("loa", f"{i}.pdf")) for i in range(101)]}),
        (SCHEMA_S3, "less than or equal to 100 items"),
    ),
    "nested-arrays-100000": Case(lambda p: "[" * 100_000, ("nested too deeply",)),
    "nested-objects-100000": Case(lambda p: '{"a": ' * 100_000, ("nested too deeply",)),
    "integer-5000-digits": Case(lambda p: "1" * 5000, ("unreadable JSON", "4300 digits")),
    "integer-5000-digits-in-a-record": Case(
        lambda p: json.dumps({"Records": [s3_record(p.bucket, "k", size=0)]}).replace(
            '"size": 0', '"size": ' + "9" * 5000
        ),
        ("unreadable JSON", "4300 digits"),
    ),
    "not-json": Case(lambda p: "{not json", ("not JSON",)),
    "empty-body": Case(lambda p: "", ("not JSON",)),
    "json-null": Case(lambda p: "null", (SCHEMA_U, "data must be object")),
    "json-array": Case(lambda p: "[]", (SCHEMA_U, "data must be object")),
    "json-string": Case(lambda p: '"upload inbox/scan.pdf please"', (SCHEMA_U, "data must be object")),
    "extra-field": Case(
        lambda p: upload_request(p.bucket, priority="high"), (SCHEMA_U, "must not contain", "priority")
    ),
    "id-ending-in-newline": Case(
        lambda p: upload_request(p.bucket, draft_port_request_id="abc\n"),
        (SCHEMA_U, "draft_port_request_id must match pattern"),
    ),
    "id-129-characters": Case(
        lambda p: upload_request(p.bucket, draft_sub_request_id="a" * 129),
        (SCHEMA_U, "draft_sub_request_id must match pattern"),
    ),
    "id-with-slash": Case(
        lambda p: upload_request(p.bucket, draft_port_request_id=f"{PORT_REQUEST}/../x"),
        (SCHEMA_U, "draft_port_request_id must match pattern"),
    ),
    "unknown-document-type": Case(
        lambda p: upload_request(p.bucket, document_type="passport"),
        (SCHEMA_U, "document_type must be one of"),
    ),
    "no-key": Case(lambda p: upload_request(p.bucket, key=None), (SCHEMA_U, "must contain", "key")),
    "lone-surrogate-in-upload-request-key": Case(
        lambda p: upload_request(p.bucket, key="inbox/\ud800.pdf"), ("not valid Unicode (a lone surrogate)",)
    ),
    "lone-surrogate-in-s3-record-key": Case(
        lambda p: json.dumps({"Records": [s3_record(p.bucket, key("loa", "\ud800.pdf"), size=5)]}),
        ("not valid Unicode (a lone surrogate)",),
    ),
    "description-over-schema-limit": Case(
        lambda p: upload_request(p.bucket, description="x" * 1001),
        (SCHEMA_U, "description must be shorter than or equal to 1000"),
    ),
}

MARKER_KEY = key("loa", "deleted-before-the-request.pdf")


def delete_marker_version(pipeline: Pipeline) -> str:
    versions = boto3.client("s3").list_object_versions(Bucket=pipeline.bucket, Prefix=MARKER_KEY)
    return str(only(versions["DeleteMarkers"])["VersionId"])


# Intake messages that must be rejected in the invocation that sees them, like every malformed one.
RETRIED_INTAKE = {
    # The schemas hold an ETag to S3's shape: a newline could otherwise reach an If-Match header.
    "etag-with-a-newline": Case(
        lambda p: upload_request(p.bucket, key="inbox/etag-pinned.pdf", etag="abc\nX-Injected: 1"),
        names="inbox/etag-pinned.pdf",
    ),
    # A HEAD on a delete marker's version answers 405: the object named no longer exists.
    "version-pinned-to-a-delete-marker": Case(
        lambda p: upload_request(p.bucket, key=MARKER_KEY, version_id=delete_marker_version(p)),
        names=MARKER_KEY,
    ),
    # A ledger id past DynamoDB's key limit names its object by a digest instead.
    "key-and-version-at-the-schema-limits": Case(
        lambda p: upload_request(p.bucket, key="k" * 1024, version_id="v" * 1024),
        names="k" * 1024,
    ),
    # Past S3's 1,024 bytes a key names no object that can exist.
    "s3-record-key-of-2100-characters": Case(
        lambda p: json.dumps({"Records": [s3_record(p.bucket, key("loa", "a" * 2100 + ".pdf"), size=5)]}),
        names=key("loa", "a" * 2100 + ".pdf"),
    ),
}
# Well-formed requests naming a document that cannot be sent: rejected against that document.
NAMED_DOCUMENT = {
    "upload-request-for-another-bucket": (
        lambda p: upload_request("someone-elses-bucket", key="a.pdf"),
        f"s3://someone-elses-bucket/a.pdf#unversioned -> {PORT_REQUEST}/{SUB_REQUEST}/loa",
        "'someone-elses-bucket' is not the intake bucket",
    ),
    "s3-record-for-another-bucket": (
        lambda p: json.dumps(
            {
                "Records": [
                    s3_record("someone-elses-bucket", key("loa", "loa.pdf"), size=len(LOA), eTag="0" * 32)
                ]
            }
        ),
        f"s3://someone-elses-bucket/{key('loa', 'loa.pdf')}#{'0' * 32} -> {PORT_REQUEST}/{SUB_REQUEST}/loa",
        "'someone-elses-bucket' is not the intake bucket",
    ),
    "upload-request-for-a-missing-object": (
        lambda p: upload_request(p.bucket, key="inbox/never-dropped.pdf"),
        "s3://{bucket}/inbox/never-dropped.pdf#unversioned -> " + f"{PORT_REQUEST}/{SUB_REQUEST}/loa",
        "the object does not exist",
    ),
}

DELETE_EVENTS = ("ObjectRemoved:Delete", "ObjectRemoved:DeleteMarkerCreated")

HOSTILE_URLS = {
    "unbalanced-bracket": Case(lambda p: "https://[files/x", ("is malformed: Invalid IPv6 URL",)),
    "netloc-changes-under-nfkc": Case(lambda p: "https://files\uff03x/", ("under NFKC normalization",)),
    "port-out-of-range": Case(
        lambda p: "http://127.0.0.1:99999/files-service-local/x", ("Port out of range",)
    ),
    "host-not-allowed": Case(
        lambda p: "https://attacker.example.com/direct-uploads%2Fx%2Floa.pdf",
        ("not in ALLOWED_UPLOAD_HOSTS",),
    ),
    "loopback-alias-not-allowed": Case(
        lambda p: f"http://localhost:{p.emulator.files_host.rsplit(':', 1)[1]}/files-service-local/x",
        ("not in ALLOWED_UPLOAD_HOSTS",),
    ),
    "plain-http": Case(
        lambda p: "http://files-service-prod.s3.amazonaws.com/direct-uploads%2Fx", ("must use https",)
    ),
    "credentials-in-url": Case(
        lambda p: f"http://porter:hunter2@{p.emulator.files_host}/files-service-local/x",
        ("must not carry user credentials",),
    ),
}

MALFORMED_ASSOCIATION = {
    "url-over-2048": Case(
        lambda p: association_request(f"{p.emulator.files_url}/files-service-local/{'a' * 2100}"),
        (SCHEMA_A, "url must be shorter than or equal to 2048"),
    ),
    "no-url": Case(lambda p: association_request(None), (SCHEMA_A, "exactly one target", "url")),
    "ftp-url": Case(
        lambda p: association_request("ftp://files.example.com/loa.pdf"), (SCHEMA_A, "url must match")
    ),
    # urllib drops tabs and newlines from a URL before the allow-list sees it; the raw URL would
    # still be what Telnyx receives.
    "tab-in-url-host": Case(
        lambda p: association_request(
            f"http://127.0.0.1\t:{p.emulator.files_host.rsplit(':', 1)[1]}/files-service-local/x"
        ),
        (SCHEMA_A, "url must match"),
    ),
    "newline-in-url-path": Case(
        lambda p: association_request(f"{p.emulator.files_url}/files-service-local/x\ny"),
        (SCHEMA_A, "url must match"),
    ),
    "extra-field": Case(
        lambda p: association_request(f"{p.emulator.files_url}/x", callback="https://attacker.example.com"),
        (SCHEMA_A, "must not contain", "callback"),
    ),
    "unknown-document-type": Case(
        lambda p: association_request(f"{p.emulator.files_url}/x", document_type="passport"),
        (SCHEMA_A, "document_type must be one of"),
    ),
    "id-ending-in-newline": Case(
        lambda p: association_request(f"{p.emulator.files_url}/x", draft_sub_request_id="abc\n"),
        (SCHEMA_A, "draft_sub_request_id must match pattern"),
    ),
    "description-over-schema-limit": Case(
        lambda p: association_request(f"{p.emulator.files_url}/x", description="x" * 1001),
        (SCHEMA_A, "description must be shorter than or equal to 1000"),
    ),
    "source-with-extra-field": Case(
        lambda p: association_request(
            f"{p.emulator.files_url}/x", source={"bucket": p.bucket, "key": "k", "trusted": True}
        ),
        (SCHEMA_A, "must not contain", "trusted"),
    ),
    "nested-arrays-100000": Case(lambda p: "[" * 100_000, ("nested too deeply",)),
    "lone-surrogate-in-url": Case(
        lambda p: association_request(f"{p.emulator.files_url}/files-service-local/x\ud800.pdf"),
        ("not valid Unicode (a lone surrogate)",),
    ),
}

# Objects dropped into the intake bucket (every one with the user's own tag team=porting).
BAD_KEYS = {
    "outside-the-layout": ("inbox/scan-0042.pdf", "does not follow the intake layout"),
    "five-parts": (f"{PORT_REQUEST}/{SUB_REQUEST}/loa/extra/loa.pdf", "does not follow the intake layout"),
    "non-empty-folder-key": (f"{PORT_REQUEST}/{SUB_REQUEST}/loa/", "does not follow the intake layout"),
    "unknown-type-folder": (key("passport", "id.pdf"), "unknown document type 'passport'"),
    "id-ending-in-newline": (
        key("loa", "loa.pdf", sub_request=SUB_REQUEST + "\n"),
        f"draft_sub_request_id '{SUB_REQUEST}\\n' is not a valid id",
    ),
    "dot-dot-id": (key("loa", "loa.pdf", port_request=".."), "draft_port_request_id '..' is not a valid id"),
    "id-129-characters": (key("loa", "loa.pdf", sub_request="a" * 129), "is not a valid id"),
}
FOLDER_PLACEHOLDER = f"{PORT_REQUEST}/{OTHER_SUB_REQUEST}/loa/"
BATCH_MAX_DOCUMENT_BYTES = 1000
BAD_FILES = {
    "empty": ("empty.pdf", b"", "the file is empty"),
    "text-named-pdf": ("notes.pdf", b"just some text, not a PDF at all " * 20, "could not be recognised"),
    "zip-named-pdf": ("archive.pdf", b"PK\x03\x04" + bytes(300), "application/zip, which is not allowed"),
    "oversize": ("big.pdf", INVOICE + bytes(2000), f"over the limit of {BATCH_MAX_DOCUMENT_BYTES} bytes"),
}


@dataclass
class Batch:
    """What the shared stack looked like once every cheap hostile input had been delivered."""

    bucket: str
    failed: set[str]
    ledger: dict[str, dict[str, Any]]
    tags: dict[str, dict[str, str]]
    urls: dict[str, str]
    telnyx_calls: list[dict[str, Any]]
    association_queue: list[MessageTypeDef]
    foreign_tags: dict[str, str]

    def row_for_key(self, object_key: str) -> dict[str, Any]:
        return only([e for e in self.ledger.values() if e.get("source", {}).get("key") == object_key])


def notified_key(notification: str) -> str:
    return unquote_plus(json.loads(notification)["Records"][0]["s3"]["object"]["key"])


@contextlib.contextmanager
def isolated_pipeline(emulator: TelnyxEmulator, **settings: str) -> Iterator[Pipeline]:
    """conftest's `isolated_environment` and `pipeline`, for a module-scoped fixture (theirs are
    function-scoped): no real AWS, moto with the stack from template.yaml, fresh caches."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("AWS_", "TELNYX_", "POWERTOOLS_")) or name in SETTING_NAMES:
                patch.delenv(name)
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": "portdocs-tests",
        }.items():
            patch.setenv(name, value)
        clear_caches()
        try:
            with mock_aws():
                stack = provision(
                    stack_name="portdocs-test",
                    parameters={
                        "TelnyxApiBaseUrl": emulator.api_url,
                        "AllowedUploadHosts": emulator.files_host,
                    },
                )
                for name, value in {**stack.functions["UploaderFunction"].environment, **settings}.items():
                    patch.setenv(name, value)
                pipeline = Pipeline(
                    stack=stack, runtime=LocalRuntime(stack, retry_after_seconds=0), emulator=emulator
                )
                pipeline.set_credentials(**{k: v for k, v in emulator.credentials.items() if v})
                pipeline.runtime.drain()  # S3's test event
                clear_caches()  # the local runtime applied the template's settings; ours apply from here
                yield pipeline
        finally:
            clear_caches()


def clear_caches() -> None:
    wiring.upload_service.cache_clear()
    wiring.association_service.cache_clear()
    parameters.clear_caches()


@pytest.fixture(scope="module")
def batch(running_emulator: TelnyxEmulator) -> Batch:
    emulator = reset(running_emulator)
    with isolated_pipeline(emulator, MAX_DOCUMENT_BYTES=str(BATCH_MAX_DOCUMENT_BYTES)) as pipeline:
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="someone-elses-bucket")
        s3.put_object(Bucket="someone-elses-bucket", Key=key("loa", "loa.pdf"), Body=LOA)
        dropped = {case: object_key for case, (object_key, _) in BAD_KEYS.items()}
        dropped |= {case: key("loa", file_name) for case, (file_name, _, _) in BAD_FILES.items()}
        for case, object_key in dropped.items():
            body = BAD_FILES[case][1] if case in BAD_FILES else LOA
            pipeline.drop(object_key, body, Tagging="team=porting")
        pipeline.drop(FOLDER_PLACEHOLDER, b"")
        deleted = {name: pipeline.drop(key("loa", f"deleted-{name}.pdf"), LOA) for name in DELETE_EVENTS}
        for object_key in [key("loa", f"deleted-{name}.pdf") for name in DELETE_EVENTS] + [MARKER_KEY]:
            pipeline.drop(object_key, LOA)
            s3.delete_object(Bucket=pipeline.bucket, Key=object_key)
        # moto's own notifications, for the drops that are cases; the other objects are named by
        # the messages below.
        notifications = {
            f"drop:{i}": m["Body"]
            for i, m in enumerate(pipeline.receive("IntakeQueueUrl"))
            if notified_key(m["Body"]) in {*dropped.values(), FOLDER_PLACEHOLDER}
        }
        intake = {
            f"intake:{name}": case.body(pipeline)
            for name, case in (MALFORMED_INTAKE | RETRIED_INTAKE).items()
        }
        intake |= {f"named:{name}": body(pipeline) for name, (body, _, _) in NAMED_DOCUMENT.items()}
        intake |= {
            f"deleted:{name}": s3_event(
                pipeline, key("loa", f"deleted-{name}.pdf"), version, 0, event_name=name
            )
            for name, version in deleted.items()
        }
        urls = {name: case.body(pipeline) for name, case in HOSTILE_URLS.items()}
        association = {f"url:{name}": association_request(url) for name, url in urls.items()}
        association |= {
            f"association:{name}": case.body(pipeline) for name, case in MALFORMED_ASSOCIATION.items()
        }

        failed = invoke_records(pipeline, "uploader", intake | notifications)
        failed |= invoke_records(pipeline, "associator", association)

        return Batch(
            bucket=pipeline.bucket,
            failed=failed,
            ledger=pipeline.ledger(),
            tags={object_key: pipeline.tags(object_key) for object_key in dropped.values()},
            urls=urls,
            telnyx_calls=emulator.calls(),
            association_queue=pipeline.receive("AssociationQueueUrl"),
            foreign_tags={
                t["Key"]: t["Value"]
                for t in s3.get_object_tagging(Bucket="someone-elses-bucket", Key=key("loa", "loa.pdf"))[
                    "TagSet"
                ]
            },
        )


def test_no_input_of_the_hostile_batch_reaches_telnyx_or_the_association_queue(batch: Batch):
    assert batch.telnyx_calls == []
    assert batch.association_queue == []


def assert_rejected_at_once(batch: Batch, message_id: str, reason: tuple[str, ...]) -> None:
    """Rejected in the invocation that saw it, under its own message id, never retried."""
    assert message_id not in batch.failed
    entry = batch.ledger[f"sqs-message:{message_id}"]
    assert entry["state"] == "rejected"
    for part in reason:
        assert part in entry["reason"]


@pytest.mark.parametrize("name", cases(MALFORMED_INTAKE))
def test_malformed_intake_message_is_rejected_at_once_under_its_message_id(batch: Batch, name: str):
    assert_rejected_at_once(batch, f"intake:{name}", MALFORMED_INTAKE[name].reason)


@pytest.mark.parametrize("name", cases(RETRIED_INTAKE))
def test_message_that_cannot_be_acted_on_is_rejected_not_retried(batch: Batch, name: str):
    message_id, case = f"intake:{name}", RETRIED_INTAKE[name]

    # Documented: a message that cannot be read, or names no object that exists, is rejected in the
    # invocation that sees it, with a reason (under its message id, or against the document it
    # names), never handed back to SQS, which would deliver it again and again, then park it in
    # the DLQ.
    assert message_id not in batch.failed
    under_message = batch.ledger.get(f"sqs-message:{message_id}", {})
    named = [e for e in batch.ledger.values() if e.get("source", {}).get("key") == case.names]
    assert under_message.get("state") == "rejected" or [e["state"] for e in named] in (
        ["rejected"],
        ["withdrawn"],
    )


@pytest.mark.parametrize("name", list(NAMED_DOCUMENT))
def test_request_naming_an_object_that_cannot_be_sent_is_rejected_against_that_document(
    batch: Batch, name: str
):
    _, document_id, reason = NAMED_DOCUMENT[name]

    assert f"named:{name}" not in batch.failed
    entry = batch.ledger[document_id.format(bucket=batch.bucket)]
    assert entry["state"] == "rejected" and reason in entry["reason"]


def test_s3_record_for_another_bucket_leaves_that_bucket_untouched(batch: Batch):
    entry = batch.ledger[NAMED_DOCUMENT["s3-record-for-another-bucket"][1]]

    assert entry["source"]["bucket"] == "someone-elses-bucket"
    assert batch.foreign_tags == {}  # never tagged: only the intake bucket's objects are


@pytest.mark.parametrize("event_name", DELETE_EVENTS)
def test_delete_event_is_ignored_without_a_ledger_row(batch: Batch, event_name: str):
    deleted_key = key("loa", f"deleted-{event_name}.pdf")

    assert f"deleted:{event_name}" not in batch.failed
    assert f"sqs-message:deleted:{event_name}" not in batch.ledger
    assert [e for e in batch.ledger.values() if e.get("source", {}).get("key") == deleted_key] == []


@pytest.mark.parametrize("name", list(HOSTILE_URLS))
def test_association_url_that_must_not_be_followed_is_rejected_before_telnyx(batch: Batch, name: str):
    url = batch.urls[name]

    assert f"url:{name}" not in batch.failed
    entry = batch.ledger[association_id(url)]
    assert entry["state"] == "rejected"
    for part in HOSTILE_URLS[name].reason:
        assert part in entry["reason"]
    assert "hunter2" not in json.dumps(entry, default=str)  # a URL's password is never recorded


@pytest.mark.parametrize("name", list(MALFORMED_ASSOCIATION))
def test_association_message_violating_the_schema_is_rejected_under_its_message_id(batch: Batch, name: str):
    assert_rejected_at_once(batch, f"association:{name}", MALFORMED_ASSOCIATION[name].reason)


@pytest.mark.parametrize("name", list(BAD_KEYS))
def test_key_that_names_no_valid_target_is_rejected_with_reason_and_tag(batch: Batch, name: str):
    object_key, reason = BAD_KEYS[name]

    entry = batch.row_for_key(object_key)
    assert entry["state"] == "rejected" and reason in entry["reason"]
    tags = batch.tags[object_key]
    assert tags["portdocs:status"] == "rejected" and tags["team"] == "porting"  # the user's own tag kept


def test_empty_folder_placeholder_is_ignored(batch: Batch):
    assert [e for e in batch.ledger.values() if e.get("source", {}).get("key") == FOLDER_PLACEHOLDER] == []


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_file_whose_bytes_are_not_an_acceptable_document_is_rejected_before_telnyx(batch: Batch, name: str):
    file_name, _, reason = BAD_FILES[name]
    object_key = key("loa", file_name)

    entry = batch.row_for_key(object_key)
    assert entry["state"] == "rejected" and reason in entry["reason"]
    assert batch.tags[object_key]["portdocs:status"] == "rejected"


# -- keys, metadata and file names that need a stack of their own -------------------------------------------


def test_upload_request_for_a_non_empty_object_whose_key_ends_in_a_slash_is_sent_not_ignored(
    pipeline: Pipeline,
):
    folder_like = "inbox/scans/"  # an object, not a placeholder: it has bytes
    pipeline.drop(folder_like, LOA)
    pipeline.receive("IntakeQueueUrl")  # its own S3 event (a key outside the layout) is not the case here

    pipeline.send("IntakeQueueUrl", upload_request(pipeline.bucket, key=folder_like))
    pipeline.runtime.drain()

    entry = row_for_key(pipeline, folder_like)
    assert entry["state"] == "associated"
    assert pipeline.emulator.stored_bytes(only(pipeline.emulator.documents())["url"]) == LOA
    assert pipeline.tags(folder_like)["portdocs:status"] == "associated"


@pytest.mark.parametrize("length", [1001, 1800])
def test_description_metadata_over_the_schema_limit_is_shortened_and_the_document_associated(
    pipeline: Pipeline, length: int
):
    limit = shapes.description_max_length()
    description = "".join(chr(ord("a") + i % 26) for i in range(length))
    object_key = key("loa", "loa.pdf")
    pipeline.drop(object_key, LOA, Metadata={"description": description})

    pipeline.runtime.drain()

    sent = only(pipeline.emulator.calls("supporting_documents"))["json"]["description"]
    assert len(sent) == limit
    assert sent == description[: limit - 1] + "…"
    entry = row_for_key(pipeline, object_key)
    assert entry["state"] == "associated" and entry["description"] == sent
    assert pipeline.tags(object_key)["portdocs:status"] == "associated"


def _location_length(pipeline: Pipeline, file_name: str) -> int:
    # The emulator's Location: {files_url}/{bucket}/{quote_plus("direct-uploads/<uuid>/<name>")}.
    return len(f"{pipeline.emulator.files_url}/files-service-local/") + len(
        quote_plus(f"direct-uploads/{'0' * 36}/{file_name}", safe="")
    )


def test_file_name_whose_location_would_exceed_the_url_limit_is_rejected_before_any_upload(
    pipeline: Pipeline,
):
    limit = shapes.url_max_length()
    file_name = "委" * 230 + ".pdf"
    assert _location_length(pipeline, file_name) > limit
    object_key = key("loa", file_name)
    pipeline.drop(object_key, LOA)

    pipeline.runtime.poll_once(pipeline.runtime.source_for("UploaderFunction"))

    entry = row_for_key(pipeline, object_key)
    assert entry["state"] == "rejected"  # not stranded as `uploaded`
    assert f"url must be shorter than or equal to {limit}" in entry["reason"]
    assert "location_url" not in entry
    assert pipeline.emulator.calls("files") == []  # nothing reached the files service
    assert pipeline.receive("AssociationQueueUrl") == []
    assert pipeline.tags(object_key)["portdocs:status"] == "rejected"


def test_file_name_whose_location_just_fits_the_url_limit_is_associated(pipeline: Pipeline):
    limit = shapes.url_max_length()
    characters = (limit - _location_length(pipeline, ".pdf")) // len(quote_plus("委"))
    file_name = "委" * characters + ".pdf"
    assert limit - 9 < _location_length(pipeline, file_name) <= limit
    object_key = key("loa", file_name)
    pipeline.drop(object_key, LOA)

    pipeline.runtime.drain()

    url = only(pipeline.emulator.documents())["url"]
    assert len(url) == _location_length(pipeline, file_name)
    assert row_for_key(pipeline, object_key)["state"] == "associated"


# -- the source hijack --------------------------------------------------------------------------------------


def test_association_naming_a_pending_source_with_a_foreign_url_is_handled_as_a_plain_association(
    pipeline: Pipeline,
):
    target_key = key("loa", "loa.pdf")
    real = upload_then_queue(pipeline, target_key, LOA)
    foreign_url = upload_then_queue(
        pipeline, key("invoice", "other.pdf", sub_request=OTHER_SUB_REQUEST), INVOICE
    )["url"]
    hijack = {**real, "url": foreign_url, "description": "swapped"}

    response, _ = pipeline.invoke("associator", [json.dumps(hijack)])

    assert response == OK
    pending = row_for_key(pipeline, target_key)
    assert pending["state"] == "uploaded" and pending["location_url"] == real["url"]  # not marked associated
    assert pipeline.tags(target_key)["portdocs:status"] == "uploaded"
    plain = pipeline.ledger()[association_id(foreign_url)]
    assert plain["state"] == "associated" and "source" not in plain
    assert only(pipeline.emulator.documents())["url"] == foreign_url

    response, _ = pipeline.invoke("associator", [json.dumps(real)])  # the real one, then

    assert response == OK
    documents = {d["url"]: d for d in pipeline.emulator.documents()}
    entry = row_for_key(pipeline, target_key)
    assert entry["state"] == "associated"
    assert entry["telnyx_document_id"] == documents[real["url"]]["id"] != documents[foreign_url]["id"]
    assert pipeline.tags(target_key)["portdocs:status"] == "associated"


def test_association_naming_a_sibling_url_on_the_same_target_does_not_attach_it_twice(pipeline: Pipeline):
    first, second = key("loa", "page-1.pdf"), key("loa", "page-2.pdf")
    first_message = upload_then_queue(pipeline, first, LOA)
    second_message = upload_then_queue(pipeline, second, INVOICE)
    hijack = {**first_message, "url": second_message["url"]}

    pipeline.invoke("associator", [json.dumps(hijack)])
    pipeline.invoke("associator", [json.dumps(first_message), json.dumps(second_message)])

    documents = pipeline.emulator.documents()
    assert sorted(d["url"] for d in documents) == sorted([first_message["url"], second_message["url"]])
    by_url = {d["url"]: d["id"] for d in documents}
    assert row_for_key(pipeline, first)["telnyx_document_id"] == by_url[first_message["url"]]
    assert row_for_key(pipeline, second)["telnyx_document_id"] == by_url[second_message["url"]]


def test_malformed_association_naming_a_source_with_a_foreign_url_leaves_that_document_alone(
    pipeline: Pipeline,
):
    target_key = key("loa", "loa.pdf")
    real = upload_then_queue(pipeline, target_key, LOA)
    forged = {
        **real,
        "url": f"{pipeline.emulator.files_url}/files-service-local/elsewhere.pdf",
        "urgent": True,
    }

    response, ids = pipeline.invoke("associator", [json.dumps(forged)])

    assert response == OK
    assert row_for_key(pipeline, target_key)["state"] == "uploaded"
    assert pipeline.ledger()[f"sqs-message:{ids[0]}"]["state"] == "rejected"
    assert pipeline.tags(target_key)["portdocs:status"] == "uploaded"


# -- Telnyx and files-service answers -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 405])
def test_upload_request_endpoint_missing_is_a_configuration_failure_never_a_rejection(
    pipeline: Pipeline, status: int
):
    pipeline.emulator.inject(Fault(endpoint="upload_requests", status=status, times=None))
    object_key = key("loa", "loa.pdf")
    pipeline.drop(object_key, LOA)

    response, ids = pipeline.invoke("uploader", [m["Body"] for m in pipeline.receive("IntakeQueueUrl")])

    assert response == {"batchItemFailures": [{"itemIdentifier": ids[0]}]}  # kept for redrive
    entry = row_for_key(pipeline, object_key)
    assert entry["state"] == "failed"
    assert entry["last_error"].startswith("configuration") and f"answered {status}" in entry["last_error"]
    assert "reason" not in entry
    assert pipeline.tags(object_key)["portdocs:status"] == "failed"
    assert len(pipeline.emulator.calls("upload_requests")) == 1  # not retried in place either
    assert pipeline.emulator.calls("files") == []


def test_association_to_an_unknown_draft_port_request_is_rejected_with_telnyx_reason(pipeline: Pipeline):
    object_key = key("loa", "loa.pdf", port_request=UNKNOWN_PORT_REQUEST)
    pipeline.drop(object_key, LOA)

    pipeline.runtime.drain()

    entry = row_for_key(pipeline, object_key)
    assert entry["state"] == "rejected"
    assert (
        "answered 404" in entry["reason"]
        and f"draft port request {UNKNOWN_PORT_REQUEST} not found" in entry["reason"]
    )
    assert pipeline.tags(object_key)["portdocs:status"] == "rejected"
    assert pipeline.emulator.documents() == []


@pytest.fixture
def files_service() -> Iterator[tuple[str, list[tuple[int, bytes]], list[int]]]:
    """A files service of our own that answers each form POST with the next scripted answer
    (status, body); a Location answer once the script is used up. Yields url, script, sizes."""
    script: list[tuple[int, bytes]] = []
    received: list[int] = []

    @Request.application
    def app(request: Request) -> Response:
        received.append(len(request.get_data()))  # read the whole upload before answering
        if script:
            status, body = script.pop(0)
            return Response(body, status=status, content_type="application/xml")
        return Response(
            status=204, headers={"Location": f"{url}/files-service-local/direct-uploads%2Fx%2Floa.pdf"}
        )

    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url, script, received
    finally:
        server.shutdown()
        server.server_close()


def _s3_error(code: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{code} happened</Message>"
        "<RequestId>4442587FB7D0A2F9</RequestId></Error>"
    ).encode()


def _upload_once(files_url: str) -> str:
    client = DraftPortRequestsApi(
        TelnyxHttp("http://127.0.0.1:9", StaticCredentials(TelnyxCredentials(api_key="never-sent-to-s3"))),
        allowed_upload_hosts=(files_url.split("//", 1)[1],),
    )
    form = UploadForm(url=f"{files_url}/files-service-local", fields={"key": "direct-uploads/x/${filename}"})
    return client.upload(
        form, "loa.pdf", io.BytesIO(LOA), len(LOA), "application/pdf", Deadline(time.monotonic() + 30)
    )


@pytest.mark.parametrize("code", ["RequestTimeout", "IncompleteBody"])
def test_files_service_400_with_a_transient_s3_code_is_retried(files_service, code: str):
    files_url, script, received = files_service
    script.append((400, _s3_error(code)))

    with pytest.raises(TransientError, match=code):
        _upload_once(files_url)
    script.append((400, _s3_error(code)))
    location = with_retries(lambda: _upload_once(files_url), Deadline(time.monotonic() + 30))

    assert location.endswith("direct-uploads%2Fx%2Floa.pdf")
    assert (
        len(received) == 3 and len(set(received)) == 1 and received[0] > len(LOA)
    )  # the whole file each time


def test_files_service_400_with_a_permanent_s3_code_is_not_retried(files_service):
    files_url, script, received = files_service
    script.append((400, _s3_error("EntityTooLarge")))

    with pytest.raises(PermanentError, match="EntityTooLarge"):
        with_retries(lambda: _upload_once(files_url), Deadline(time.monotonic() + 30))

    assert len(received) == 1


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"status": 502}, id="502"),
        pytest.param({"status": 504}, id="504"),
        pytest.param({"drop": True}, id="dropped-connection"),
    ],
)
def test_association_failing_after_telnyx_recorded_it_ends_associated_as_a_possible_duplicate(
    pipeline: Pipeline, fault: dict[str, Any]
):
    # The emulator's ambiguous fault (e090ede) records the association, then answers the fault.
    pipeline.emulator.inject(Fault(endpoint="supporting_documents", ambiguous=True, times=1, **fault))
    object_key = key("loa", "loa.pdf")
    pipeline.drop(object_key, LOA)

    pipeline.runtime.drain()

    first, second = pipeline.emulator.calls("supporting_documents")
    assert first.get("ambiguous") and first["effect_status"] == 201 and second["status"] == 201
    entry = row_for_key(pipeline, object_key)
    assert entry["state"] == "associated" and entry["possible_duplicate"] is True
    assert "send_unconfirmed" not in entry
    tags = pipeline.tags(object_key)
    assert tags["portdocs:status"] == "associated" and tags["portdocs:check"] == "possible duplicate"
    # A known limitation (docs/limitations.md): Telnyx now holds the file twice, and the ledger says so.
    documents = pipeline.emulator.documents()
    assert len(documents) == 2 and {d["url"] for d in documents} == {entry["location_url"]}
    assert entry["telnyx_document_id"] == documents[1]["id"]


def test_association_that_telnyx_records_then_fails_every_time_posts_once_per_delivery_spread_out(
    pipeline: Pipeline,
):
    pipeline.emulator.inject(Fault(endpoint="supporting_documents", ambiguous=True, times=None))
    object_key = key("loa", "loa.pdf")
    message = json.dumps(upload_then_queue(pipeline, object_key, LOA))

    for tries in range(1, 4):
        response, _ = pipeline.invoke("associator", [message], timeout=30)
        assert response == {"batchItemFailures": []}  # handed back for later, not spent
        # Never a second POST in one invocation: every unknown outcome waits for the next delivery.
        assert len(pipeline.emulator.calls("supporting_documents")) == tries

    assert len(pipeline.emulator.documents()) == 3  # what Telnyx holds; the ledger knows it may
    entry = row_for_key(pipeline, object_key)
    assert entry["state"] == "failed" and entry["send_unconfirmed"] is True
    assert int(entry["unconfirmed_sends"]) == 3 and "first_unconfirmed_at" in entry
    assert not entry["last_error"].startswith("needs attention")  # minutes, not the span: no person yet
    assert pipeline.tags(object_key)["portdocs:status"] == "failed"


# -- replaced and withdrawn files (events as S3 sends them for a versioned bucket) --------------------------


def test_older_version_delivered_after_a_newer_put_is_superseded_and_never_sent(pipeline: Pipeline):
    object_key = key("loa", "Letter of Authorization +1.pdf")
    v1, v2 = put_versions(pipeline, object_key, LOA, INVOICE)

    response, _ = pipeline.invoke("uploader", [s3_event(pipeline, object_key, v1, len(LOA))])

    assert response == OK
    old = row_for_version(pipeline, v1["VersionId"])
    assert old["state"] == "superseded" and "a newer version of this file arrived" in old["reason"]
    assert version_tags(pipeline, object_key, v1["VersionId"])["portdocs:status"] == "superseded"
    assert pipeline.emulator.calls() == []

    pipeline.invoke("uploader", [s3_event(pipeline, object_key, v2, len(INVOICE))])
    pipeline.runtime.drain()

    new = row_for_version(pipeline, v2["VersionId"])
    assert new["state"] == "associated"
    assert pipeline.emulator.stored_bytes(only(pipeline.emulator.documents())["url"]) == INVOICE
    assert len(pipeline.emulator.calls("upload_requests")) == 1
    assert version_tags(pipeline, object_key, v2["VersionId"])["portdocs:status"] == "associated"


def test_older_version_event_arriving_after_the_newer_was_associated_is_superseded(pipeline: Pipeline):
    object_key = key("loa", "loa.pdf")
    v1, v2 = put_versions(pipeline, object_key, LOA, INVOICE)
    pipeline.invoke("uploader", [s3_event(pipeline, object_key, v2, len(INVOICE))])
    pipeline.runtime.drain()

    pipeline.invoke("uploader", [s3_event(pipeline, object_key, v1, len(LOA))])
    pipeline.runtime.drain()

    assert row_for_version(pipeline, v1["VersionId"])["state"] == "superseded"
    assert row_for_version(pipeline, v2["VersionId"])["state"] == "associated"
    assert len(pipeline.emulator.calls("upload_requests")) == 1 and len(pipeline.emulator.documents()) == 1


def test_put_then_deleted_before_upload_is_withdrawn_and_nothing_sent(pipeline: Pipeline):
    object_key = key("loa", "loa.pdf")
    (v1,) = put_versions(pipeline, object_key, LOA)
    boto3.client("s3").delete_object(Bucket=pipeline.bucket, Key=object_key)  # a delete marker on top

    response, _ = pipeline.invoke("uploader", [s3_event(pipeline, object_key, v1, len(LOA))])

    assert response == OK
    entry = row_for_version(pipeline, v1["VersionId"])
    assert entry["state"] == "withdrawn" and "deleted before it was sent" in entry["reason"]
    assert version_tags(pipeline, object_key, v1["VersionId"])["portdocs:status"] == "withdrawn"
    assert pipeline.emulator.calls() == []


def test_version_replaced_between_upload_and_association_is_superseded_not_attached(pipeline: Pipeline):
    object_key = key("loa", "loa.pdf")
    (v1,) = put_versions(pipeline, object_key, LOA)
    pipeline.invoke("uploader", [s3_event(pipeline, object_key, v1, len(LOA))])
    (v2,) = put_versions(pipeline, object_key, INVOICE)

    pipeline.runtime.drain()  # the associator sees v1's message after v2 arrived

    entry = row_for_version(pipeline, v1["VersionId"])
    assert entry["state"] == "superseded" and "before this one was attached" in entry["reason"]
    assert pipeline.emulator.calls("supporting_documents") == []

    pipeline.invoke("uploader", [s3_event(pipeline, object_key, v2, len(INVOICE))])
    pipeline.runtime.drain()

    assert row_for_version(pipeline, v2["VersionId"])["state"] == "associated"
    assert pipeline.emulator.stored_bytes(only(pipeline.emulator.documents())["url"]) == INVOICE


def test_version_deleted_between_upload_and_association_is_withdrawn_not_attached(pipeline: Pipeline):
    object_key = key("loa", "loa.pdf")
    (v1,) = put_versions(pipeline, object_key, LOA)
    pipeline.invoke("uploader", [s3_event(pipeline, object_key, v1, len(LOA))])
    boto3.client("s3").delete_object(Bucket=pipeline.bucket, Key=object_key)

    pipeline.runtime.drain()

    entry = row_for_version(pipeline, v1["VersionId"])
    assert entry["state"] == "withdrawn" and "deleted before it was attached" in entry["reason"]
    assert pipeline.emulator.calls("supporting_documents") == []


def test_newer_version_after_the_older_was_associated_is_a_new_document(pipeline: Pipeline):
    object_key = key("loa", "loa.pdf")
    (v1,) = put_versions(pipeline, object_key, LOA)
    pipeline.invoke("uploader", [s3_event(pipeline, object_key, v1, len(LOA))])
    pipeline.runtime.drain()
    (v2,) = put_versions(pipeline, object_key, LOA)  # the very same bytes, dropped again

    pipeline.invoke("uploader", [s3_event(pipeline, object_key, v2, len(LOA))])
    pipeline.runtime.drain()

    assert v1["ETag"] == v2["ETag"]
    assert row_for_version(pipeline, v1["VersionId"])["state"] == "associated"
    assert row_for_version(pipeline, v2["VersionId"])["state"] == "associated"
    documents = pipeline.emulator.documents()
    assert len(documents) == 2 and len({d["url"] for d in documents}) == 2


def test_upload_request_pinning_an_old_version_sends_that_version(pipeline: Pipeline):
    object_key = key("loa", "loa.pdf")
    v1, _ = put_versions(pipeline, object_key, LOA, INVOICE)

    pipeline.send(
        "IntakeQueueUrl", upload_request(pipeline.bucket, key=object_key, version_id=v1["VersionId"])
    )
    pipeline.runtime.drain()

    assert row_for_version(pipeline, v1["VersionId"])["state"] == "associated"
    assert pipeline.emulator.stored_bytes(only(pipeline.emulator.documents())["url"]) == LOA


# -- duplicates bring a stale tag up to the ledger's state --------------------------------------------------


def test_duplicate_s3_event_after_association_restores_a_stale_tag(pipeline: Pipeline):
    object_key = key("loa", "loa.pdf")
    pipeline.drop(object_key, LOA, Tagging="team=porting")
    notification = only(pipeline.receive("IntakeQueueUrl"))["Body"]
    pipeline.invoke("uploader", [notification])
    pipeline.runtime.drain()
    assert pipeline.tags(object_key)["portdocs:status"] == "associated"
    boto3.client("s3").put_object_tagging(
        Bucket=pipeline.bucket,
        Key=object_key,
        Tagging={
            "TagSet": [{"Key": "team", "Value": "porting"}, {"Key": "portdocs:status", "Value": "uploaded"}]
        },
    )

    response, _ = pipeline.invoke("uploader", [notification])

    assert response == OK
    assert pipeline.tags(object_key) == {"team": "porting", "portdocs:status": "associated"}
    assert len(pipeline.emulator.calls("upload_requests")) == 1 and len(pipeline.emulator.documents()) == 1


def test_duplicate_s3_event_after_rejection_restores_status_and_reason(pipeline: Pipeline):
    object_key = key("loa", "empty.pdf")
    pipeline.drop(object_key, b"")
    notification = only(pipeline.receive("IntakeQueueUrl"))["Body"]
    pipeline.invoke("uploader", [notification])
    boto3.client("s3").put_object_tagging(
        Bucket=pipeline.bucket,
        Key=object_key,
        Tagging={"TagSet": [{"Key": "portdocs:status", "Value": "associated"}]},
    )

    response, _ = pipeline.invoke("uploader", [notification])

    assert response == OK
    assert pipeline.tags(object_key) == {
        "portdocs:status": "rejected",
        "portdocs:reason": "the file is empty",
    }


def test_duplicate_association_message_after_association_restores_a_stale_tag(pipeline: Pipeline):
    object_key = key("loa", "loa.pdf")
    message = json.dumps(upload_then_queue(pipeline, object_key, LOA))
    pipeline.invoke("associator", [message])
    boto3.client("s3").put_object_tagging(
        Bucket=pipeline.bucket,
        Key=object_key,
        Tagging={"TagSet": [{"Key": "portdocs:status", "Value": "failed"}]},
    )

    response, _ = pipeline.invoke("associator", [message])

    assert response == OK
    assert pipeline.tags(object_key) == {"portdocs:status": "associated"}
    assert len(pipeline.emulator.calls("supporting_documents")) == 1


# -- time: records that cannot start are handed back, not failed --------------------------------------------


@pytest.mark.parametrize(
    ("function", "queue_output"),
    [("uploader", "IntakeQueueUrl"), ("associator", "AssociationQueueUrl")],
)
def test_batch_with_too_little_time_hands_its_records_back_as_copies(
    pipeline: Pipeline, function: str, queue_output: str
):
    if function == "uploader":
        pipeline.drop(key("loa", "loa.pdf"), LOA)
        document = only(pipeline.receive("IntakeQueueUrl"))["Body"]
    else:
        document = association_request(
            f"{pipeline.emulator.files_url}/files-service-local/direct-uploads%2Fx"
        )
    bodies = {"msg-0": document, "msg-1": "{not json"}
    upstream = {"upstream-trace": {"StringValue": "trace-42", "DataType": "String"}}

    failed = invoke_records(pipeline, function, bodies, timeout=12, attributes=upstream)

    assert failed == set()  # no receive spent on them
    copies = queued_copies(pipeline, queue_output)
    assert sorted(m["Body"] for m in copies) == sorted(bodies.values())
    for copy in copies:
        assert copy["MessageAttributes"] == {
            # The copy keeps its age (when SQS took the first copy), and counts its deferrals.
            FIRST_SENT_ATTRIBUTE: {"StringValue": SENT_AN_HOUR_AGO, "DataType": "Number"},
            "portdocs-deferrals": {"StringValue": "1", "DataType": "Number"},
            "upstream-trace": {"StringValue": "trace-42", "DataType": "String"},  # the sender's own, kept
        }
    assert pipeline.ledger() == {}
    assert pipeline.emulator.calls() == []


def test_record_left_without_time_by_a_slow_batch_mate_is_handed_back(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
):
    set_record_concurrency(monkeypatch, 1)  # the second record waits for the first's worker
    pipeline.emulator.inject(Fault(endpoint="upload_requests", latency=4.0, times=1))
    slow, late = key("loa", "slow.pdf"), key("invoice", "late.pdf")
    pipeline.drop(slow, LOA)
    pipeline.drop(late, INVOICE)
    first, second = (m["Body"] for m in pipeline.receive("IntakeQueueUrl"))

    # 20 s: 14 s of budget once the bookkeeping reserve is kept; the first record spends 4 s and more.
    response, _ = pipeline.invoke("uploader", [first, second], timeout=20)

    assert response == OK
    assert [e["state"] for e in rows(pipeline)] == ["uploaded"]  # the first; nothing written for the second
    assert [m["Body"] for m in queued_copies(pipeline, "IntakeQueueUrl")] == [second]
    assert len(pipeline.emulator.calls("upload_requests")) == 1


def test_record_first_sent_longer_ago_than_the_limit_goes_to_its_dead_letter_queue_saying_why(
    pipeline: Pipeline,
):
    sent_long_ago = str(int((time.time() - MAX_AGE_SECONDS - 60) * 1000))
    too_old = {FIRST_SENT_ATTRIBUTE: {"StringValue": sent_long_ago, "DataType": "Number"}}

    failed = invoke_records(pipeline, "uploader", {"msg-0": "{not json"}, timeout=12, attributes=too_old)

    assert failed == set()  # acknowledged: it is on the dead-letter queue, not circling
    assert queued_copies(pipeline, "IntakeQueueUrl") == []
    (dead,) = queued_copies(pipeline, "IntakeDeadLetterQueueUrl")
    assert dead["Body"] == "{not json"
    reason = dead["MessageAttributes"][DEAD_LETTER_REASON_ATTRIBUTE]["StringValue"]
    assert "handed back for 24 hours" in reason
    assert FIRST_SENT_ATTRIBUTE not in dead["MessageAttributes"]  # a redrive starts afresh
    assert pipeline.ledger() == {}


def test_a_record_deferred_again_and_again_waits_longer_each_time_instead_of_circling_hot(
    pipeline: Pipeline,
):
    deferred = {"portdocs-deferrals": {"StringValue": "8", "DataType": "Number"}}

    failed = invoke_records(pipeline, "uploader", {"msg-0": "{not json"}, timeout=12, attributes=deferred)

    assert failed == set()
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.output("IntakeQueueUrl"), AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"  # 32 s, though no wait was asked
    time.sleep(2)
    assert queued_copies(pipeline, "IntakeQueueUrl") == []  # still waiting


def test_a_sender_cannot_make_a_record_young_again_by_its_attributes(pipeline: Pipeline):
    sent_long_ago = str(int((time.time() - MAX_AGE_SECONDS - 60) * 1000))
    in_a_year = str(int((time.time() + 365 * 24 * 3600) * 1000))
    claims_youth = {FIRST_SENT_ATTRIBUTE: {"StringValue": in_a_year, "DataType": "Number"}}

    failed = invoke_records(
        pipeline, "uploader", {"msg-0": "{not json"}, timeout=12, attributes=claims_youth, sent=sent_long_ago
    )

    assert failed == set()
    assert queued_copies(pipeline, "IntakeQueueUrl") == []  # not circling
    (dead,) = queued_copies(pipeline, "IntakeDeadLetterQueueUrl")  # SQS's word on its age stands
    assert DEAD_LETTER_REASON_ATTRIBUTE in dead["MessageAttributes"]


def test_rate_limit_longer_than_the_invocation_hands_the_record_back_delayed(pipeline: Pipeline):
    pipeline.emulator.inject(Fault(endpoint="upload_requests", status=429, retry_after="30", times=1))
    object_key = key("loa", "loa.pdf")
    pipeline.drop(object_key, LOA)
    notification = only(pipeline.receive("IntakeQueueUrl"))["Body"]

    started = time.monotonic()
    response, _ = pipeline.invoke("uploader", [notification], timeout=20)

    assert response == OK
    assert time.monotonic() - started < 5  # it did not sit out the 30 s
    assert len(pipeline.emulator.calls("upload_requests")) == 1
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.output("IntakeQueueUrl"), AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    assert row_for_key(pipeline, object_key)["state"] == "received"  # waiting is not a failure
    assert pipeline.tags(object_key).get("portdocs:status") != "failed"
    assert pipeline.emulator.documents() == []

"""What the test suites share besides fixtures: ids, paths and the in-process pipeline driver."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import quote_plus

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from portdocs import wiring
from portdocs_sandbox import cli
from portdocs_sandbox.runtime import InProcessInvoker, LocalLambdaContext, LocalRuntime, sqs_event
from portdocs_sandbox.stack import Stack, load_template
from portdocs_sandbox.telnyx_emulator import TelnyxEmulator
from tests.files import JPEG, PNG

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import PutObjectOutputTypeDef
    from mypy_boto3_sqs.type_defs import MessageTypeDef

ROOT = Path(__file__).resolve().parents[1]
# The functions' own settings (besides AWS_*, TELNYX_*, POWERTOOLS_*): cleared before each test.
SETTING_NAMES = (
    "ASSOCIATION_QUEUE_URL",
    "INTAKE_BUCKET",
    "DOCUMENTS_TABLE",
    "IDEMPOTENCY_TABLE",
    "ALLOWED_UPLOAD_HOSTS",
    "MAX_DOCUMENT_BYTES",
    "ALLOWED_CONTENT_TYPES",
    "RECORD_CONCURRENCY",
    "EVENT_BUS_NAME",
    "INTAKE_QUEUE_URL",
    "STUCK_AFTER_SECONDS",
    "NOTIFICATIONS_QUEUE_URL",
    "PORTING_ORDERS_TABLE",
    "ACTION_TOPIC_ARN",
    "WEBHOOK_KEY_SECRET_ARN",
)
EVENTS = ROOT / "events"
SAMPLES = ROOT / "samples"
LOA = (SAMPLES / "Letter of Authorization.pdf").read_bytes()
INVOICE = (SAMPLES / "losing-carrier-invoice.pdf").read_bytes()
# One file of each document type: both flows' acceptance tests drop each.
EVERY_DOCUMENT_TYPE = pytest.mark.parametrize(
    ("document_type", "file_name", "body", "content_type"),
    [
        ("loa", "Letter of Authorization.pdf", LOA, "application/pdf"),
        ("invoice", "invoice.pdf", INVOICE, "application/pdf"),
        ("csr", "csr.png", PNG, "image/png"),
        ("other", "photo-id.jpg", JPEG, "image/jpeg"),
    ],
)
PORT_REQUEST = "3f9a8c2e-0b1d-4e5f-9a6b-7c8d9e0f1a2b"
SUB_REQUEST = "8d7c6b5a-4e3f-4a1b-9c2d-1e0f9a8b7c6d"
# The CLI options that name the draft sub-request above.
DRAFT_SUB_REQUEST = ("--port-request", PORT_REQUEST, "--sub-request", SUB_REQUEST)
OTHER_SUB_REQUEST = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
PORTING_ORDER = "6f5e4d3c-2b1a-4f0e-9d8c-7b6a5f4e3d2c"
# A porting order the emulator is never told of.
UNKNOWN_ORDER = "0e0e0e0e-1f1f-4a2a-8b3b-4c4c4c4c4c4c"


@dataclass
class Pipeline:
    """The deployed system, in-process: moto resources from template.yaml, handlers, emulator."""

    stack: Stack
    runtime: LocalRuntime
    emulator: TelnyxEmulator

    @property
    def bucket(self) -> str:
        return self.stack.outputs["IntakeBucketName"]

    def output(self, name: str) -> str:
        return self.stack.outputs[name]

    def drop(self, key: str, body: bytes, **extra: Any) -> PutObjectOutputTypeDef:
        return boto3.client("s3").put_object(Bucket=self.bucket, Key=key, Body=body, **extra)

    def send(self, queue_output: str, message: dict[str, Any] | str) -> str:
        body = message if isinstance(message, str) else json.dumps(message)
        return boto3.client("sqs").send_message(QueueUrl=self.output(queue_output), MessageBody=body)[
            "MessageId"
        ]

    def receive_delayed(self, queue_output: str) -> list[MessageTypeDef]:
        """Waits out the delay of the copies handed back (shortened in tests) and takes them."""
        time.sleep(1.5)  # BACKOFF_BASE_SECONDS in tests/conftest.py: the first hand-back's delay, and more
        return self.receive(queue_output)

    def receive(self, queue_output: str) -> list[MessageTypeDef]:
        """Takes every message off a queue (making it invisible) without handling it."""
        messages: list[MessageTypeDef] = []
        while (
            batch := boto3.client("sqs")
            .receive_message(
                QueueUrl=self.output(queue_output),
                MaxNumberOfMessages=10,
                MessageSystemAttributeNames=["All"],
            )
            .get("Messages", [])
        ):
            messages.extend(batch)
        return messages

    def invoke(
        self,
        function: str,
        bodies: list[str],
        timeout: int | None = None,
        handler: Any = None,
        receives: int = 1,
        attributes: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], list[str]]:
        """Invokes a handler directly with an SQS event of AWS's shape; returns response and ids.
        `attributes`: message attributes as ReceiveMessage answers them."""
        messages: list[dict[str, Any]] = [
            {
                "MessageId": f"msg-{i}",
                "ReceiptHandle": f"rh-{i}",
                "Body": body,
                "MD5OfBody": "0" * 32,
                "Attributes": {
                    "ApproximateReceiveCount": str(receives),
                    "SentTimestamp": str(int(time.time() * 1000)),
                },
                "MessageAttributes": attributes or {},
            }
            for i, body in enumerate(bodies)
        ]
        logical_id = {"uploader": "UploaderFunction", "associator": "AssociatorFunction"}[function]
        event = sqs_event(messages, self.runtime.source_for(logical_id).queue_url, self.stack.region)
        context = LocalLambdaContext(self.stack.functions[logical_id], self.stack.region, timeout)
        handler = handler or self.handlers[logical_id]
        return handler(event, context), [m["MessageId"] for m in messages]

    @property
    def handlers(self) -> dict[str, Callable[[dict[str, Any], Any], dict[str, Any]]]:
        """The functions' handlers: the pipeline's runtime runs them in this process (no log_dir)."""
        return cast(InProcessInvoker, self.runtime.invoker).handlers

    def credential(self, name: str) -> str:
        """One of the credentials the emulator accepts: the fixtures start it with all three set."""
        return cast(str, self.emulator.credentials[name])

    def ledger(self) -> dict[str, dict[str, Any]]:
        table = boto3.resource("dynamodb").Table(self.output("DocumentsTableName"))
        items: list[dict[str, Any]] = table.scan()["Items"]
        return {item["document_id"]: item for item in items}

    def events(self) -> list[dict[str, Any]]:
        """The document events put on the bus, as the stack's rule logged them."""
        target = cli.Target(self.stack.outputs, boto3.session.Session(), None, 0, ())
        return cli.document_events(target)

    def tags(self, key: str) -> dict[str, str]:
        tag_set = boto3.client("s3").get_object_tagging(Bucket=self.bucket, Key=key)["TagSet"]
        return {t["Key"]: t["Value"] for t in tag_set}

    def set_credentials(self, **credentials: str) -> None:
        boto3.client("secretsmanager").put_secret_value(
            SecretId=self.output("CredentialsSecretArn"), SecretString=json.dumps(credentials)
        )
        parameters.clear_caches()
        # The functions' secret cache lives in their services: as if it had expired.
        wiring.upload_service.cache_clear()
        wiring.association_service.cache_clear()


def deliver_the_association_three_times(pipeline: Pipeline) -> dict[str, Any]:
    """Uploads the one document dropped, then delivers its association request three times: twice
    in one batch, once after. Returns the batch's response."""
    pipeline.runtime.poll_once(pipeline.runtime.source_for("UploaderFunction"))
    (message,) = pipeline.receive("AssociationQueueUrl")
    response, _ = pipeline.invoke("associator", [message["Body"], message["Body"]])
    pipeline.invoke("associator", [message["Body"]])
    return response


def s3_event(bucket: str, key: str, put_response: PutObjectOutputTypeDef, size: int) -> str:
    """An intake notification as real S3 sends it for a versioned bucket (moto's lack versionId)."""
    notification = json.loads(
        json.loads((EVENTS / "intake-s3-notification.json").read_text())["Records"][0]["body"]
    )
    record = notification["Records"][0]
    record["s3"]["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
    record["s3"]["object"] = {
        "key": quote_plus(key, safe="/"),
        "size": size,
        "eTag": put_response["ETag"].strip('"'),
        "versionId": put_response["VersionId"],
        "sequencer": "0055AED6DCD90281E5",
    }
    return json.dumps(notification)


def set_record_concurrency(monkeypatch: pytest.MonkeyPatch, records: int) -> None:
    """Both functions work on at most `records` records of a batch at once from now on."""
    monkeypatch.setenv("RECORD_CONCURRENCY", str(records))
    wiring.upload_service.cache_clear()
    wiring.association_service.cache_clear()


_RESOURCES = load_template()["Resources"]
INTAKE_BUCKET_ARN = "arn:${AWS::Partition}:s3:::portdocs-intake-${AWS::AccountId}-${StackSuffix}"


def resource_name(expression: Any) -> str:
    """A policy resource as the template writes it, e.g. `IntakeBucket/*` for `${IntakeBucket.Arn}/*`."""
    if isinstance(expression, str):
        return expression
    ((function, argument),) = expression.items()
    if function == "Fn::GetAtt":
        return argument[0]
    if function == "Ref":
        return argument
    if function == "Fn::If":
        return "|".join(resource_name(branch) for branch in argument[1:])
    assert function == "Fn::Sub", expression
    if isinstance(argument, list):  # the intake bucket, named by the ARN its name makes (template.yaml)
        argument = argument[0].replace(INTAKE_BUCKET_ARN, "${IntakeBucket.Arn}")
    return (
        re.sub(r"\$\{([A-Za-z]+)\.Arn\}", r"\1", argument)
        .rsplit(":", 1)[-1]
        .replace("${", "")
        .replace("}", "")
    )


def template_grants(function: str, with_kms_key: bool) -> dict[str, set[str]]:
    """Every action the function's role grants, each with the resources it names (resource_name)."""
    role = _RESOURCES[_RESOURCES[function]["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
    documents = [policy["PolicyDocument"] for policy in role.get("Policies", [])]
    for arn in role["ManagedPolicyArns"]:
        if "Fn::If" in arn:
            condition, when_true, _ = arn["Fn::If"]
            assert condition == "HasKmsKey"
            if not with_kms_key:
                continue
            arn = when_true
        documents.append(_RESOURCES[arn["Ref"]]["Properties"]["PolicyDocument"])
    grants: dict[str, set[str]] = {}
    for document in documents:
        for statement in document["Statement"]:
            assert (
                statement["Effect"] == "Allow"
                and "NotAction" not in statement
                and "NotResource" not in statement
            )
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            for action in actions:
                grants.setdefault(action, set()).update(resource_name(r) for r in resources)
    return grants


T = TypeVar("T")


def only(items: list[T]) -> T:
    """The one item of a list that must hold exactly one."""
    assert len(items) == 1, items
    return items[0]

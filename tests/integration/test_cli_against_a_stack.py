"""The CLI with --stack-name: names resolved from a CloudFormation stack's Outputs (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from portdocs_sandbox import cli
from portdocs_sandbox.stack import Stack, provision
from tests.support import DRAFT_SUB_REQUEST, PORT_REQUEST, SAMPLES, SUB_REQUEST

STACK = "portdocs-prod"


@pytest.fixture
def deployed() -> Iterator[Stack]:
    """The stack's resources, and a CloudFormation stack whose Outputs and Parameters name them."""
    with mock_aws():
        stack = provision(stack_name=STACK)
        template = {
            "Parameters": {"MaxDocumentBytes": {"Type": "Number"}, "AllowedContentTypes": {"Type": "String"}},
            "Resources": {"Marker": {"Type": "AWS::SQS::Queue"}},
            "Outputs": {name: {"Value": value} for name, value in stack.outputs.items()},
        }
        boto3.client("cloudformation").create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(template),
            Parameters=[
                {"ParameterKey": "MaxDocumentBytes", "ParameterValue": "2000"},
                {"ParameterKey": "AllowedContentTypes", "ParameterValue": "application/pdf"},
            ],
        )
        yield stack


def portdocs(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main([*args, "--stack-name", STACK, "--region", "us-east-1"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_drop_puts_files_under_the_layout_of_the_stacks_bucket(deployed: Stack, capsys, tmp_path):
    for sample in ("Letter of Authorization.pdf", "losing-carrier-invoice.pdf"):  # within the 2,000 bytes
        (tmp_path / sample).write_bytes((SAMPLES / sample).read_bytes())
    code, output = portdocs(
        capsys,
        "drop",
        str(tmp_path),
        *DRAFT_SUB_REQUEST,
        "--type",
        "LOA",
        "--description",
        "signed",
    )

    assert code == 0, output
    bucket = deployed.outputs["IntakeBucketName"]
    keys = sorted(o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == sorted(f"{PORT_REQUEST}/{SUB_REQUEST}/loa/{p.name}" for p in tmp_path.iterdir())
    head = boto3.client("s3").head_object(Bucket=bucket, Key=keys[0])
    assert head["Metadata"] == {"description": "signed"} and head["ContentType"] == "application/pdf"


def test_drop_refuses_everything_when_one_file_breaks_the_stacks_limits(deployed: Stack, capsys, tmp_path):
    (tmp_path / "ok.pdf").write_bytes((SAMPLES / "Letter of Authorization.pdf").read_bytes())
    (tmp_path / "big.pdf").write_bytes(b"%PDF-1.4\n" + bytes(3000))
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))

    code, output = portdocs(
        capsys,
        "drop",
        str(tmp_path),
        *DRAFT_SUB_REQUEST,
        "--type",
        "loa",
    )

    assert code == 2
    assert "big.pdf: the file is 3009 bytes, over the limit of 2000 bytes" in output
    assert "photo.png: the file is image/png, which is not allowed" in output
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=deployed.outputs["IntakeBucketName"])


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [("--type", "bill", "unknown document type"), ("--port-request", "../x", "not a valid id")],
)
def test_drop_refuses_bad_targets(deployed: Stack, capsys, flag, value, message):
    arguments = {"--port-request": PORT_REQUEST, "--sub-request": SUB_REQUEST, "--type": "loa", flag: value}
    code, output = portdocs(capsys, "drop", str(SAMPLES), *[x for pair in arguments.items() for x in pair])
    assert code == 2 and message in output


def test_send_validates_then_queues_an_association_request(deployed: Stack, capsys):
    url = "https://files-service-prod.s3.amazonaws.com/direct-uploads%2Fu%2Fa+b.pdf"
    code, output = portdocs(
        capsys,
        "send",
        *DRAFT_SUB_REQUEST,
        "--type",
        "Invoice",
        "--url",
        url,
    )
    assert code == 0, output

    (message,) = boto3.client("sqs").receive_message(QueueUrl=deployed.outputs["AssociationQueueUrl"])[
        "Messages"
    ]
    assert json.loads(message["Body"]) == {
        "draft_port_request_id": PORT_REQUEST,
        "draft_sub_request_id": SUB_REQUEST,
        "document_type": "invoice",
        "description": "",
        "url": url,
    }
    code, output = portdocs(
        capsys,
        "send",
        *DRAFT_SUB_REQUEST,
        "--type",
        "loa",
        "--url",
        "ftp://x/y.pdf",
    )
    assert code == 2 and "url must match pattern" in output


def test_redrive_moves_every_dead_letter_back_to_its_queue(deployed: Stack, capsys):
    sqs = boto3.client("sqs")
    for i in range(13):
        sqs.send_message(
            QueueUrl=deployed.outputs["IntakeDeadLetterQueueUrl"], MessageBody=json.dumps({"n": i})
        )

    code, output = portdocs(capsys, "redrive", "--queue", "intake")

    assert code == 0 and "moved 13 message(s) from the intake dead-letter queue" in output
    moved = []
    while batch := sqs.receive_message(
        QueueUrl=deployed.outputs["IntakeQueueUrl"], MaxNumberOfMessages=10
    ).get("Messages"):
        moved += [
            body["n"] for body in (json.loads(m["Body"]) for m in batch) if "n" in body
        ]  # not S3's test event
    assert sorted(moved) == list(range(13))
    assert "Messages" not in sqs.receive_message(QueueUrl=deployed.outputs["IntakeDeadLetterQueueUrl"])


def test_status_reads_the_stacks_ledger(deployed: Stack, capsys):
    table = boto3.resource("dynamodb").Table(deployed.outputs["DocumentsTableName"])
    table.put_item(
        Item={
            "document_id": "d1",
            "state": "rejected",
            "reason": "the file is empty",
            "draft_port_request_id": PORT_REQUEST,
            "updated_at": "2026-11-27T00:00:00+00:00",
            "created_at": "2026-11-27T00:00:00+00:00",
        }
    )

    code, output = portdocs(capsys, "status", "--json", "--port-request", PORT_REQUEST)

    assert code == 0
    assert [(r["document_id"], r["state"], r["reason"]) for r in json.loads(output)] == [
        ("d1", "rejected", "the file is empty")
    ]


def test_an_unknown_stack_is_a_clear_error(capsys):
    with mock_aws():
        code, output = portdocs(capsys, "status")
    assert code == 2 and f"cannot read stack {STACK!r}" in output


def test_a_sandbox_that_is_gone_is_a_clear_error(capsys, tmp_path):
    state = tmp_path / "sandbox.json"
    state.write_text(
        json.dumps(
            {
                "endpoint_url": "http://127.0.0.1:9",
                "region": "us-east-1",
                "outputs": {"DocumentsTableName": "t"},
                "emulator_api_url": "",
                "emulator_files_url": "",
                "max_document_bytes": 1,
                "allowed_content_types": [],
            }
        )
    )
    code = cli.main(["status", "--state-file", str(state)])
    assert code == 1 and "is `portdocs sandbox` still running?" in capsys.readouterr().err

    code = cli.main(["status", "--state-file", str(tmp_path / "missing.json")])
    assert code == 2 and "no sandbox is running" in capsys.readouterr().err


def test_drop_names_a_file_the_checker_could_not_check_instead_of_failing(
    deployed: Stack, capsys, tmp_path, monkeypatch
):
    (tmp_path / "loa.pdf").write_bytes((SAMPLES / "Letter of Authorization.pdf").read_bytes())
    broken = tmp_path / "stand-ins" / "img2pdf"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('img2pdf is not installed')\n")
    monkeypatch.syspath_prepend(str(broken.parent))

    code, output = portdocs(capsys, "drop", str(tmp_path / "loa.pdf"), *DRAFT_SUB_REQUEST, "--type", "loa")

    assert code == 2
    assert "loa.pdf: the file checker could not run: ImportError: img2pdf is not installed" in output
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=deployed.outputs["IntakeBucketName"])

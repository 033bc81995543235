"""Who may send to which queue: the policies template.yaml puts on the queues (read back from moto,
as provisioned), evaluated as SQS evaluates them, and the CLI held to them in the sandbox.

Where no queue policy can say no (a same-account role whose own IAM policy allows sqs:SendMessage
on the intake queue), the code-level checks hold: tests/integration/test_hostile_inputs.py sends
forged association messages naming other documents' sources and URLs."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from portdocs_sandbox import cli
from portdocs_sandbox.queue_policy import Decision, Request, UnsupportedPolicy, evaluate
from portdocs_sandbox.sandbox import SandboxState
from portdocs_sandbox.stack import ACCOUNT_ID, Stack, provision
from tests.support import DRAFT_SUB_REQUEST

UPSTREAM = f"arn:aws:iam::{ACCOUNT_ID}:role/billing-system"
OTHER_ACCOUNT_UPSTREAM = "arn:aws:iam::210987654321:role/porting-portal"
STRANGER = f"arn:aws:iam::{ACCOUNT_ID}:role/someone-else"


@pytest.fixture
def stack() -> Iterator[Stack]:
    with mock_aws():
        named = f"{UPSTREAM},{OTHER_ACCOUNT_UPSTREAM}"
        yield provision(
            stack_name="portdocs-policies",
            parameters={"IntakeSenderArns": named, "AssociationSenderArns": named},
        )


def policy_of(stack: Stack, output: str) -> tuple[dict, str]:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=stack.outputs[output], AttributeNames=["Policy", "QueueArn"]
    )["Attributes"]
    return json.loads(attributes["Policy"]), attributes["QueueArn"]


def role_of(stack: Stack, function: str) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:role/{stack.physical_ids[function.replace('Function', 'Role')]}"


def sending(queue_arn: str, **request) -> Request:
    return Request("sqs:SendMessage", queue_arn, **request)


def test_only_the_stacks_functions_and_the_named_senders_may_send_to_the_association_queue(stack: Stack):
    policy, arn = policy_of(stack, "AssociationQueueUrl")
    for function in ("UploaderFunction", "AssociatorFunction", "SweeperFunction"):
        # Not denied; their own IAM policy (template.yaml) allows them, as for any role of the account.
        assert (
            evaluate(policy, sending(arn, principal_arn=role_of(stack, function)))
            is Decision.NOT_ALLOWED_HERE
        )
    assert evaluate(policy, sending(arn, principal_arn=UPSTREAM)) is Decision.ALLOWED
    assert evaluate(policy, sending(arn, principal_arn=OTHER_ACCOUNT_UPSTREAM)) is Decision.ALLOWED

    assert evaluate(policy, sending(arn, principal_arn=STRANGER)) is Decision.DENIED
    assert evaluate(policy, sending(arn, principal_arn=f"{UPSTREAM}-impostor")) is Decision.DENIED
    assert evaluate(policy, sending(arn, service="s3.amazonaws.com")) is Decision.DENIED
    # Not a sender's business: reading and deleting are left to IAM (the associator's event source).
    assert (
        evaluate(policy, Request("sqs:ReceiveMessage", arn, principal_arn=STRANGER))
        is Decision.NOT_ALLOWED_HERE
    )


def test_without_named_senders_only_the_stacks_functions_may_send():
    with mock_aws():
        stack = provision(stack_name="portdocs-unnamed")
        policy, arn = policy_of(stack, "AssociationQueueUrl")
        assert all(statement["Effect"] == "Deny" for statement in policy["Statement"])
        assert evaluate(policy, sending(arn, principal_arn=UPSTREAM)) is Decision.DENIED
        uploader = role_of(stack, "UploaderFunction")
        assert evaluate(policy, sending(arn, principal_arn=uploader)) is Decision.NOT_ALLOWED_HERE


def test_only_the_functions_and_the_named_senders_may_send_upload_requests(stack: Stack):
    policy, arn = policy_of(stack, "IntakeQueueUrl")
    # A hand-back; a porting-order document Telnyx deleted unlinked; a stuck document's upload.
    for function in ("UploaderFunction", "AssociatorFunction", "SweeperFunction"):
        assert (
            evaluate(policy, sending(arn, principal_arn=role_of(stack, function)))
            is Decision.NOT_ALLOWED_HERE
        )
    assert evaluate(policy, sending(arn, principal_arn=UPSTREAM)) is Decision.ALLOWED
    assert evaluate(policy, sending(arn, principal_arn=OTHER_ACCOUNT_UPSTREAM)) is Decision.ALLOWED

    assert evaluate(policy, sending(arn, principal_arn=STRANGER)) is Decision.DENIED


def test_the_intake_queue_takes_notifications_from_the_intake_bucket_only(stack: Stack):
    policy, arn = policy_of(stack, "IntakeQueueUrl")
    bucket = f"arn:aws:s3:::{stack.outputs['IntakeBucketName']}"
    from_bucket = {"aws:SourceArn": bucket, "aws:SourceAccount": ACCOUNT_ID}
    assert evaluate(policy, sending(arn, service="s3.amazonaws.com", context=from_bucket)) is Decision.ALLOWED
    other_bucket = {**from_bucket, "aws:SourceArn": "arn:aws:s3:::someone-elses-bucket"}
    assert (
        evaluate(policy, sending(arn, service="s3.amazonaws.com", context=other_bucket))
        is not Decision.ALLOWED
    )
    other_account = {**from_bucket, "aws:SourceAccount": "210987654321"}
    assert (
        evaluate(policy, sending(arn, service="s3.amazonaws.com", context=other_account))
        is not Decision.ALLOWED
    )


@pytest.mark.parametrize("output", ["IntakeQueueUrl", "AssociationQueueUrl", "IntakeDeadLetterQueueUrl"])
def test_every_queue_refuses_plain_http_even_to_its_own_senders(stack: Stack, output: str):
    policy, arn = policy_of(stack, output)
    uploader = role_of(stack, "UploaderFunction")
    assert evaluate(policy, sending(arn, principal_arn=uploader, secure_transport=False)) is Decision.DENIED
    assert evaluate(policy, sending(arn, principal_arn=uploader)) is not Decision.DENIED


def test_a_condition_the_evaluator_does_not_know_is_refused_not_guessed():
    policy = {"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": "*",
                             "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}  # fmt: skip
    with pytest.raises(UnsupportedPolicy, match="IpAddress"):
        evaluate(policy, sending("arn:aws:sqs:us-east-1:123456789012:q", principal_arn=STRANGER))


def test_the_cli_is_held_to_the_association_queues_policy(
    stack: Stack, capsys: pytest.CaptureFixture[str], tmp_path
):
    state = SandboxState(
        endpoint_url="",
        region="us-east-1",
        outputs=stack.outputs,
        emulator_api_url="",
        emulator_files_url="",
        max_document_bytes=1000,
        allowed_content_types=("application/pdf",),
        operator_role_arn=UPSTREAM,
    )
    state_file = tmp_path / "sandbox.json"
    state.write(state_file)
    url = "https://files.example/direct-uploads/a/b.pdf"
    message = [
        "send",
        *DRAFT_SUB_REQUEST,
        "--type",
        "loa",
        "--url",
        url,
    ]
    sqs = boto3.client("sqs")

    assert cli.main([*message, "--state-file", str(state_file), "--as", STRANGER]) == 2
    assert "AccessDenied" in capsys.readouterr().err
    assert "Messages" not in sqs.receive_message(QueueUrl=stack.outputs["AssociationQueueUrl"])

    assert cli.main([*message, "--state-file", str(state_file)]) == 0  # as the named operator role
    (sent,) = sqs.receive_message(QueueUrl=stack.outputs["AssociationQueueUrl"])["Messages"]
    assert json.loads(sent["Body"])["url"] == url

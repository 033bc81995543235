"""Where the operator's commands act, the local sandbox or a deployed stack, and how they speak to
a person: what every command of `portdocs` shares."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from portdocs.config import (
    DEFAULT_ALLOWED_CONTENT_TYPES,
    DEFAULT_MAX_DOCUMENT_BYTES,
    csv_setting,
    positive_int_setting,
)
from portdocs_sandbox import queue_policy
from portdocs_sandbox.sandbox import SandboxState

# Telnyx's API, when a stack's parameters do not name another (template.yaml's default).
TELNYX_API_BASE_URL = "https://api.telnyx.com"
# Without a terminal rich assumes 80 columns; ids and reasons need more to stay readable.
console = Console(width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


class CliError(Exception):
    """A user-facing failure: printed without a traceback, exit status 2."""


@dataclass(frozen=True)
class Target:
    """Where the commands act: the local sandbox or a deployed stack."""

    outputs: dict[str, str]
    session: boto3.session.Session
    endpoint_url: str | None
    max_document_bytes: int
    allowed_content_types: tuple[str, ...]
    # Where the stack's functions reach Telnyx (the emulator in the sandbox).
    telnyx_api_base_url: str = TELNYX_API_BASE_URL
    # In the sandbox, who the commands act as: every message they send is held to the queue's
    # policy for this principal, as SQS holds it (moto does not). None on AWS, which does it itself.
    principal_arn: str | None = None

    def client(self, service: str) -> Any:
        # The service is named at run time: the stubs' per-service overloads cannot apply.
        session: Any = self.session
        client = session.client(service, endpoint_url=self.endpoint_url or None)
        if service == "sqs" and self.principal_arn:
            _hold_to_queue_policies(client, self.principal_arn)
        return client

    def table(self) -> Any:
        """The documents ledger."""
        return self._dynamodb().Table(self.outputs["DocumentsTableName"])

    def orders_table(self) -> Any:
        """The porting orders table (docs/orders.md)."""
        name = self.outputs.get("PortingOrdersTableName")
        if not name:
            raise CliError(
                "this stack has no porting orders table (no PortingOrdersTableName output): "
                "deploy a portdocs that follows porting orders"
            )
        return self._dynamodb().Table(name)

    def _dynamodb(self) -> Any:
        return self.session.resource("dynamodb", endpoint_url=self.endpoint_url or None)

    @classmethod
    def from_sandbox(cls, state: SandboxState, principal_arn: str | None = None) -> Target:
        return cls(
            state.outputs,
            state.session(),
            state.endpoint_url,
            state.max_document_bytes,
            state.allowed_content_types,
            state.emulator_api_url,
            principal_arn or state.operator_role_arn,
        )

    @classmethod
    def from_stack(cls, stack_name: str, region: str | None) -> Target:
        session = boto3.session.Session(region_name=region)
        try:
            stack = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
        except (BotoCoreError, ClientError) as error:
            raise CliError(f"cannot read stack {stack_name!r}: {error}") from None
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
        return cls(
            outputs=outputs,
            session=session,
            endpoint_url=None,
            max_document_bytes=positive_int_setting(
                parameters, "MaxDocumentBytes", DEFAULT_MAX_DOCUMENT_BYTES
            ),
            allowed_content_types=csv_setting(
                parameters, "AllowedContentTypes", DEFAULT_ALLOWED_CONTENT_TYPES
            ),
            telnyx_api_base_url=parameters.get("TelnyxApiBaseUrl") or TELNYX_API_BASE_URL,
        )


def resolve_target(args: argparse.Namespace) -> Target:
    if args.stack_name:
        return Target.from_stack(args.stack_name, args.region)
    state_file = Path(args.state_file)
    if not state_file.exists():
        raise CliError(
            f"no sandbox is running (no {state_file}): start one with `portdocs sandbox`, "
            "or pass --stack-name to use a deployed stack"
        )
    return Target.from_sandbox(SandboxState.read(state_file), principal_arn=args.principal)


def _hold_to_queue_policies(client: Any, principal_arn: str) -> None:
    """Refuses a send the queue's policy would refuse on AWS, with SQS's own error code."""
    policies: dict[str, tuple[dict[str, Any], str]] = {}

    def check(params: dict[str, Any], **_: Any) -> None:
        url = params["QueueUrl"]
        if url not in policies:
            attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy", "QueueArn"])[
                "Attributes"
            ]
            policies[url] = (json.loads(attributes.get("Policy", "{}")), attributes["QueueArn"])
        policy, queue_arn = policies[url]
        decision = queue_policy.evaluate(
            policy, queue_policy.Request("sqs:SendMessage", queue_arn, principal_arn)
        )
        same_account = principal_arn.split(":")[4] == queue_arn.split(":")[4]
        if decision is queue_policy.Decision.DENIED or (
            decision is queue_policy.Decision.NOT_ALLOWED_HERE and not same_account
        ):
            raise CliError(f"AccessDenied: the policy of {queue_arn} does not let {principal_arn} send to it")

    for operation in ("SendMessage", "SendMessageBatch"):
        client.meta.events.register(f"before-parameter-build.sqs.{operation}", check)

"""The local sandbox: moto in server mode (S3, SQS, DynamoDB, Secrets Manager), the Telnyx
emulator and the local Lambda runtime, all on loopback, wired from template.yaml.

What differs from AWS is listed in docs/sandbox.md ("How the sandbox differs from AWS").
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from portdocs.config import (
    DEFAULT_ALLOWED_CONTENT_TYPES,
    DEFAULT_MAX_DOCUMENT_BYTES,
    csv_setting,
    positive_int_setting,
)
from portdocs_sandbox.runtime import LocalRuntime
from portdocs_sandbox.stack import ACCOUNT_ID, Stack, provision
from portdocs_sandbox.telnyx_emulator import TelnyxEmulator

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

HOME = Path.home() / ".portdocs"
DEFAULT_STATE_FILE = HOME / "sandbox.json"
DEFAULT_LOG_DIR = HOME / "logs"
REGION = "us-east-1"
# The role `portdocs` commands act as in the sandbox: named in IntakeSenderArns and
# AssociationSenderArns, as a deployed stack names its operators' role, so that the queues'
# policies admit it and no one else.
OPERATOR_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/portdocs-sandbox-operator"
SANDBOX_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox"}
# Seeded in the emulator so the demo and first experiments have somewhere to send documents.
DEMO_PORT_REQUEST = "5d1c1d2e-7a3b-4c5d-9e8f-0a1b2c3d4e5f"
DEMO_SUB_REQUESTS = ("9b8a7c6d-5e4f-4a3b-8c2d-1e0f2a3b4c5d", "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f")
DEMO_PORTING_ORDER = "7e6d5c4b-3a2f-4e1d-8c0b-9a8f7e6d5c4b"


@dataclass(frozen=True)
class SandboxState:
    """What another process needs to talk to a running sandbox."""

    endpoint_url: str
    region: str
    outputs: dict[str, str]
    emulator_api_url: str
    emulator_files_url: str
    max_document_bytes: int
    allowed_content_types: tuple[str, ...]
    operator_role_arn: str = OPERATOR_ROLE_ARN
    # The local HTTP API's webhook URL (the stack's NotificationsUrl on AWS).
    notifications_url: str = ""

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, path: Path) -> SandboxState:
        values = json.loads(path.read_text())
        values["allowed_content_types"] = tuple(values["allowed_content_types"])
        return cls(**values)

    def session(self) -> boto3.session.Session:
        return boto3.session.Session(
            aws_access_key_id=SANDBOX_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=SANDBOX_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=self.region,
        )


class Sandbox:
    def __init__(
        self,
        log_dir: Path,
        retry_after_seconds: int = 2,
        stack_name: str = "portdocs-sandbox",
        log_level: str = "INFO",
    ) -> None:
        self.log_dir = log_dir
        self.log_level = log_level
        self.retry_after_seconds = retry_after_seconds
        self.stack_name = stack_name
        self.runtime: LocalRuntime | None = None
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.emulator = TelnyxEmulator()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.stack: Stack | None = None
        self.state: SandboxState | None = None
        self.notifications_url = ""

    def start(self) -> SandboxState:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        endpoint_url = f"http://{host}:{port}"
        self.emulator.start()
        self.emulator.seed(DEMO_PORT_REQUEST, *DEMO_SUB_REQUESTS)
        self.emulator.seed_porting_order(DEMO_PORTING_ORDER)
        # boto3 in this process (the provisioner, the runtime, the handlers) talks to moto server.
        os.environ.update(
            {**SANDBOX_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint_url, "AWS_DEFAULT_REGION": REGION}
        )
        self.stack = self._provision(endpoint_url)
        self.state = self._state_of(self.stack, endpoint_url)
        self.set_telnyx_credentials({k: v for k, v in self.emulator.credentials.items() if v})
        self.runtime = LocalRuntime(
            self.stack,
            retry_after_seconds=self.retry_after_seconds,
            endpoint_url=endpoint_url,
            environment={
                **SANDBOX_CREDENTIALS,
                "AWS_ENDPOINT_URL": endpoint_url,
                "POWERTOOLS_TRACE_DISABLED": "true",
                # A failing record's hand-backs shortened as its returns are (retry_after_seconds).
                "BACKOFF_BASE_SECONDS": str(max(1, self.retry_after_seconds)),
            },
            log_dir=self.log_dir,
        )
        self._threads = self.runtime.serve(self._stop)
        self.notifications_url = self.runtime.serve_http() + self._webhook_path()
        self.set_webhook_key(self.emulator.webhook_public_key)
        self.emulator.send_webhooks_to(self.notifications_url)
        self.state = replace(self.state, notifications_url=self.notifications_url)
        return self.state

    def wrap_aws(self, middleware: Callable[[WSGIApplication], WSGIApplication]) -> None:
        """Puts a WSGI middleware in front of moto server: every AWS request of the functions, the
        runtime's pollers and the CLI passes through it (bench/bulk.py counts them). Moto's server
        takes no middleware of its own: its running app is swapped."""
        server = self._moto._server
        assert server is not None, "start the sandbox first"
        server.app = middleware(server.app)

    def _webhook_path(self) -> str:
        assert self.stack is not None
        (route,) = (r for r in self.stack.http_routes if r.function == "NotificationsFunction")
        return route.path

    def _provision(self, endpoint_url: str) -> Stack:
        return provision(
            stack_name=self.stack_name,
            region=REGION,
            endpoint_url=endpoint_url,
            parameters={
                "TelnyxApiBaseUrl": self.emulator.api_url,
                "AllowedUploadHosts": self.emulator.files_host,
                "LogLevel": self.log_level,
                "IntakeSenderArns": OPERATOR_ROLE_ARN,
                "AssociationSenderArns": OPERATOR_ROLE_ARN,
            },
        )

    def _state_of(self, stack: Stack, endpoint_url: str) -> SandboxState:
        """What the CLI reads of a running sandbox, with the uploader's own limits."""
        environment = stack.functions["UploaderFunction"].environment
        return SandboxState(
            endpoint_url=endpoint_url,
            region=REGION,
            outputs=stack.outputs,
            emulator_api_url=self.emulator.api_url,
            emulator_files_url=self.emulator.files_url,
            max_document_bytes=positive_int_setting(
                environment, "MAX_DOCUMENT_BYTES", DEFAULT_MAX_DOCUMENT_BYTES
            ),
            allowed_content_types=csv_setting(
                environment, "ALLOWED_CONTENT_TYPES", DEFAULT_ALLOWED_CONTENT_TYPES
            ),
        )

    def set_webhook_key(self, public_key: str) -> None:
        """As an operator does after the deploy: Telnyx's webhook public key into its secret."""
        assert self.state is not None
        secrets = self.state.session().client("secretsmanager", endpoint_url=self.state.endpoint_url)
        secrets.put_secret_value(
            SecretId=self.state.outputs["WebhookKeySecretArn"],
            SecretString=json.dumps({"public_key": public_key}),
        )

    def set_telnyx_credentials(self, credentials: dict[str, Any]) -> None:
        assert self.state is not None
        self.state.session().client("secretsmanager", endpoint_url=self.state.endpoint_url).put_secret_value(
            SecretId=self.state.outputs["CredentialsSecretArn"], SecretString=json.dumps(credentials)
        )

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        if self.runtime:
            self.runtime.close()
        self.emulator.stop()
        self._moto.stop()

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

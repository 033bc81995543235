"""Fixtures shared by every suite: a clean AWS-less environment, moto, the Telnyx emulator and
the stack created from template.yaml."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterator

import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from portdocs import wiring
from portdocs.observability import logger
from portdocs_sandbox.runtime import LocalRuntime
from portdocs_sandbox.stack import provision
from portdocs_sandbox.telnyx_emulator import TelnyxEmulator
from tests.support import OTHER_SUB_REQUEST, PORT_REQUEST, PORTING_ORDER, SETTING_NAMES, SUB_REQUEST, Pipeline


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No real AWS: fake credentials, no endpoint override; fresh caches each test."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "TELNYX_", "POWERTOOLS_")) or name in SETTING_NAMES:
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "portdocs-tests")
    wiring.clear_caches()
    parameters.clear_caches()
    yield
    wiring.clear_caches()
    parameters.clear_caches()


@pytest.fixture
def portdocs_log() -> Iterator[Callable[[], str]]:
    """Everything the functions' logger writes during the test, as the JSON lines Lambda would hold."""
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    try:
        yield captured.getvalue
    finally:
        # Powertools types addHandler only; removeHandler it proxies to this logging.Logger, untyped.
        logging.getLogger(logger.name).removeHandler(handler)


@pytest.fixture
def emulator() -> Iterator[TelnyxEmulator]:
    with TelnyxEmulator() as running:
        running.seed(PORT_REQUEST, SUB_REQUEST, OTHER_SUB_REQUEST)
        running.seed_porting_order(PORTING_ORDER, customer_reference="ACME-42")
        yield running


@pytest.fixture
def pipeline(emulator: TelnyxEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    with mock_aws():
        stack = provision(
            stack_name="portdocs-test",
            parameters={"TelnyxApiBaseUrl": emulator.api_url, "AllowedUploadHosts": emulator.files_host},
        )
        # Functions share the template's Globals; the handlers run in this process.
        for name, value in stack.functions["UploaderFunction"].environment.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("BACKOFF_BASE_SECONDS", "1")  # a failing record's hand-backs, shortened
        pipeline = Pipeline(
            stack=stack, runtime=LocalRuntime(stack, retry_after_seconds=0), emulator=emulator
        )
        pipeline.set_credentials(**{k: v for k, v in emulator.credentials.items() if v})
        pipeline.runtime.drain()  # S3's test event, sent when the notification was set
        yield pipeline

"""Telnyx credentials: the one type, and where they come from (Secrets Manager, or the
environment for local runs)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from portdocs.errors import ConfigurationError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from mypy_boto3_secretsmanager import SecretsManagerClient


@dataclass(frozen=True)
class TelnyxCredentials:
    """Either the legacy pair (x-api-user/x-api-token) or a v2 API key (Bearer)."""

    api_user: str | None = field(default=None, repr=False)
    api_token: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], origin: str) -> TelnyxCredentials:
        return cls(
            api_user=values.get("api_user") or None,
            api_token=values.get("api_token") or None,
            api_key=values.get("api_key") or None,
        ).checked(origin)

    def checked(self, origin: str) -> TelnyxCredentials:
        """These credentials, if they can authenticate at all; `origin` names where they came from."""
        if not (self.api_key or (self.api_user and self.api_token)):
            raise ConfigurationError(f"{origin} must hold either api_user and api_token, or api_key")
        return self

    def headers(self) -> dict[str, str]:
        if self.api_user and self.api_token:
            return {"x-api-user": self.api_user, "x-api-token": self.api_token}
        return {"Authorization": f"Bearer {self.api_key}"}

    def bearer_headers(self) -> dict[str, str]:
        """Telnyx's v2 API (porting orders, documents) takes an API key only."""
        if not self.api_key:
            raise ConfigurationError(
                "porting orders use Telnyx's v2 API, which takes an API key (Bearer): the Telnyx credentials "
                "hold only api_user and api_token; add api_key to them"
            )
        return {"Authorization": f"Bearer {self.api_key}"}


class CredentialsProvider(Protocol):
    def __call__(self) -> TelnyxCredentials: ...

    def refresh(self) -> None:
        """Called after Telnyx refused the credentials: the next call must not use a cached copy."""


class StaticCredentials:
    """Credentials read once from the environment (local runs without Secrets Manager)."""

    def __init__(self, credentials: TelnyxCredentials) -> None:
        self._credentials = credentials

    def __call__(self) -> TelnyxCredentials:
        return self._credentials

    def refresh(self) -> None:
        pass  # nothing to re-read: a fix needs a restart with new environment variables


class SecretCredentials:
    """Reads the credentials secret through a Powertools secrets provider, cached across invocations.

    After a 401 the cache is bypassed once, so a redrive after the secret was fixed succeeds at
    its first attempt instead of waiting for the cache to expire. Records run side by side: a
    refresh asked for while another record is reading still takes effect (a count of refreshes,
    not a flag that reader would clear), and the provider is made once, on the client `new_client`
    gives (the project's timeouts, not the SDK's 60 s default).
    """

    CACHE_SECONDS = 300

    def __init__(self, secret_arn: str, new_client: Callable[[], SecretsManagerClient]) -> None:
        self._secret_arn = secret_arn
        self._new_client = new_client
        self._lock = threading.Lock()
        self._provider: SecretsProvider | None = None
        self._refreshes = 0
        self._refreshes_read = 0

    def refresh(self) -> None:
        with self._lock:
            self._refreshes += 1

    def __call__(self) -> TelnyxCredentials:
        # Imported here, not at the top: the functions that never call Telnyx import this module
        # through their settings, and must not pay for Powertools' parameters at cold start.
        from aws_lambda_powertools.utilities import parameters

        with self._lock:
            if self._provider is None:
                self._provider = parameters.SecretsProvider(boto3_client=self._new_client())
            provider, refreshes = self._provider, self._refreshes
            stale = refreshes != self._refreshes_read
        origin = f"secret {self._secret_arn}"
        try:
            raw = provider.get(self._secret_arn, max_age=self.CACHE_SECONDS, force_fetch=stale)
        except parameters.exceptions.GetParameterError as error:
            raise ConfigurationError(f"cannot read {origin}: {error}") from None
        with self._lock:
            self._refreshes_read = max(self._refreshes_read, refreshes)
        return TelnyxCredentials.from_mapping(_json_object(raw, origin), origin)


def _json_object(raw: object, origin: str) -> dict[str, Any]:
    try:
        values = json.loads(raw) if isinstance(raw, str | bytes) else None
    except ValueError:
        raise ConfigurationError(f"{origin} is not JSON") from None
    if not isinstance(values, dict):
        raise ConfigurationError(f"{origin} is not a JSON object")
    return values

"""The three ways a document step can fail; every adapter maps its library's errors onto these.

The retry-or-reject decision is made from the class alone, in one place (`portdocs.processing`).
"""

from __future__ import annotations


class PortdocsError(Exception):
    """Base of every error the service decides on."""


class TransientError(PortdocsError):
    """Worth retrying: the same request may succeed later (timeouts, 429, 5xx, expired forms)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(PortdocsError):
    """The document itself is wrong: reject it with this human-readable reason, never retry."""


class ConfigurationError(PortdocsError):
    """The deployment is wrong (credentials, secret): keep the document for redrive once fixed."""

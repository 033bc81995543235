"""The three ways a document step can fail; every adapter maps its library's errors onto these.

The retry-or-reject decision is made from the class alone, in one place (`portdocs.lifecycle`).
"""

from __future__ import annotations


class PortdocsError(Exception):
    """Base of every error the service decides on."""


class TransientError(PortdocsError):
    """Worth retrying: the same request may succeed later (timeouts, 429, 5xx, expired forms)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AmbiguousError(TransientError):
    """A non-idempotent request was sent and its outcome is unknown (a read timeout, a reset, a
    502/504): Telnyx may have acted on it. Retried like any transient fault, but a success after
    it may be a second copy, so the document is marked `possible_duplicate`."""


class DeferredError(TransientError):
    """Not worth trying in this invocation (too little time left, or Telnyx asked every caller
    to wait longer than is left): the record is handed back untouched, after `retry_after`."""


class PermanentError(PortdocsError):
    """The document itself is wrong: reject it with this human-readable reason, never retry.

    `possibly_attached`: an earlier association attempt's outcome was never learnt, so the
    document may be on Telnyx although this one was refused."""

    def __init__(self, message: str, possibly_attached: bool = False) -> None:
        super().__init__(message)
        self.possibly_attached = possibly_attached


class MissingObjectError(PermanentError):
    """The intake object (or the version named) is not there: deleted or replaced since it was
    announced. The service may tell which, and end the document withdrawn or superseded."""


class UploadGoneError(PortdocsError):
    """Telnyx no longer has the uploaded file (its documents service deletes a document not linked
    within 30 minutes): a fresh upload of the same intake object is the cure, not a retry."""

    def __init__(self, message: str, telnyx_document_id: str) -> None:
        super().__init__(message)
        self.telnyx_document_id = telnyx_document_id


class ConfigurationError(PortdocsError):
    """The deployment is wrong (credentials, secret): keep the document for redrive once fixed."""


class AttentionError(ConfigurationError):
    """Only a person can tell what to do (several association attempts with unknown outcomes):
    keep the document, like a configuration fault, until someone has looked."""

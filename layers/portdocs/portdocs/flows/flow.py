"""What every Telnyx flow does, each in its own way: the interface the services call."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar

from portdocs.ledger import UnconfirmedSendLimit

if TYPE_CHECKING:
    from portdocs.documents import Association, Document
    from portdocs.file_check import CheckedFile
    from portdocs.retrying import Deadline

# After an unknown outcome an attach is tried again (a missing LOA blocks a port), but not for ever:
# a Telnyx that records and then fails every time would otherwise collect a copy per try. A
# person is asked only when both hold: this many unknown outcomes, the first of them longer ago
# than the span. Unknown outcomes are spread out (portdocs.redelivery: about 1, 2, 4, 8, then 15
# minutes), so after an outage of up to an hour the try that goes through comes within 75 minutes
# of the first unknown outcome: it heals by itself. A Telnyx that keeps failing is left after 90
# minutes, with at most 12 copies for a person to check (tests/unit/test_redelivery.py).
# `ceiling`, whatever the time: several copies of one document's message (a duplicate S3 event, a
# re-drive) each come back on their own schedule, and together could POST far more often.
UNCONFIRMED_SENDS = UnconfirmedSendLimit(count=6, span_seconds=90 * 60, ceiling=20)

TargetT = TypeVar("TargetT", contravariant=True)
UploadT = TypeVar("UploadT")


class Flow(Protocol[TargetT, UploadT]):
    """One Telnyx API's way of taking a document. The services hold a flow chosen from the
    document's target (portdocs.flows.Flows) and never ask which one it is."""

    # The association message's field that names the upload (a draft: url; an order: telnyx_document_id).
    UPLOAD_FIELD: ClassVar[str]

    def check_fits(self, file_name: str, size: int, content_type: str) -> None:
        """Raises PermanentError, with the reason, for what this flow's Telnyx service would refuse."""

    def check_target(self, target: TargetT, deadline: Deadline) -> None:
        """Raises PermanentError, with the reason, when Telnyx says the target takes no documents;
        asked before an upload, so that nothing is uploaded for a target that cannot have it."""

    def upload(self, document: Document, checked: CheckedFile, deadline: Deadline) -> UploadT:
        """Sends the checked (perhaps converted) file to Telnyx; once per attempt (the caller retries)."""

    def confirm_still_there(self, upload: UploadT, deadline: Deadline) -> None:
        """Raises UploadGoneError if Telnyx no longer has the uploaded file."""

    def check_association(self, upload: UploadT, uploaded_by_us: bool) -> None:
        """Refuses an association request naming an upload this flow must not attach."""

    def attach(
        self,
        target: TargetT,
        upload: UploadT,
        description: str,
        document_id: str,
        unconfirmed_before: bool,
        deadline: Deadline,
    ) -> Association:
        """Attaches the upload to its target and says how sure that is (`possible_duplicate`)."""

"""The draft-port-request flow (Telnyx's legacy API): the file goes into a presigned form of the
files service, and its Location is associated with the draft sub-request.

Telnyx's association POST is not idempotent and Telnyx offers no way to list a draft's documents,
so an unknown outcome cannot be checked: the intent is recorded on the ledger before each POST,
and a success after an unknown outcome is marked as a possible duplicate (a missing LOA blocks a
port; a duplicate is harmless and a person can remove it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from portdocs.association_queue import AssociationQueue
from portdocs.documents import Association, Document, DraftTarget, LocationUpload
from portdocs.errors import AmbiguousError, AttentionError, ConfigurationError, PermanentError, PortdocsError
from portdocs.flows.flow import UNCONFIRMED_SENDS
from portdocs.messages import AssociationRequest
from portdocs.retrying import Deadline, note_retry, with_retries
from portdocs.telnyx_legacy import DraftAssociation, DraftPortRequestsApi, UploadForm
from portdocs.urls import check_url_allowed

if TYPE_CHECKING:
    from portdocs.file_check import CheckedFile
    from portdocs.flows import FlowParts
    from portdocs.ledger import Ledger

# What the ledger and the event say when Telnyx's answer to an association carried no id: the
# association happened, only its id is missing (retrying would double it).
ID_NOT_RETURNED = "unknown"


class DraftFlow:
    UPLOAD_FIELD: ClassVar[str] = "url"

    def __init__(self, parts: FlowParts) -> None:
        self._api = DraftPortRequestsApi(parts.http, parts.allowed_upload_hosts)
        self._ledger = parts.ledger
        self._allowed_upload_hosts = parts.allowed_upload_hosts

    @staticmethod
    def check_fits(file_name: str, size: int, content_type: str) -> None:
        """The files service takes what the uploader's own settings allow."""

    def check_target(self, target: DraftTarget, deadline: Deadline) -> None:
        """Telnyx offers no way to read a draft port request: a wrong id is learnt only when the
        association is refused, and the uploaded file stays on the files service (docs/flows.md)."""

    def upload(self, document: Document, checked: CheckedFile, deadline: Deadline) -> LocationUpload:
        # Each attempt asks for a fresh form: a retry may be curing an expired or refused one.
        form = self._api.request_upload_form(checked.content_type, deadline)
        self._check_association_would_be_accepted(document, form, checked.file_name)
        with checked.path.open("rb") as body:
            location = self._api.upload(
                form, checked.file_name, body, checked.size, checked.content_type, deadline
            )
        return LocationUpload(location)

    def confirm_still_there(self, upload: LocationUpload, deadline: Deadline) -> None:
        """The files service keeps what it holds."""

    def check_association(self, upload: LocationUpload, uploaded_by_us: bool) -> None:
        """The Location is a URL Telnyx will fetch: only from an allowed host."""
        try:
            check_url_allowed(upload.location_url, self._allowed_upload_hosts)
        except PermanentError as error:
            if uploaded_by_us:
                # The uploader accepted this host: the allow-list changed since, not the document.
                raise ConfigurationError(
                    f"ALLOWED_UPLOAD_HOSTS no longer allows the uploaded file: {error}"
                ) from None
            raise

    def attach(
        self,
        target: DraftTarget,
        upload: LocationUpload,
        description: str,
        document_id: str,
        unconfirmed_before: bool,
        deadline: Deadline,
    ) -> Association:
        association = DraftAssociation(target, description, upload.location_url)
        sends = _Sends(self._ledger, document_id, ambiguous=unconfirmed_before)

        def post() -> str | None:
            sends.note()
            try:
                return self._api.associate(association, deadline)
            except AmbiguousError:
                sends.ambiguous = True
                raise

        try:
            telnyx_document_id = with_retries(post, deadline, on_retry=note_retry)
        except PortdocsError as error:
            raise sends.settled_by(error) from None
        if telnyx_document_id is None:
            telnyx_document_id = ID_NOT_RETURNED
        return Association(telnyx_document_id, possible_duplicate=sends.ambiguous)

    def _check_association_would_be_accepted(
        self, document: Document, form: UploadForm, file_name: str
    ) -> None:
        """The association message is checked against its schema before the file is sent, with the
        URL the files service will answer: a document the associator would refuse (a file name too
        long for a URL, say) is rejected now, not stranded as `uploaded`."""
        predicted = AssociationRequest.of(document, LocationUpload(form.location_for(file_name)))
        try:
            AssociationQueue.check(predicted)
        except PermanentError as error:
            raise PermanentError(f"the file cannot be associated as named: {error}") from None


class _Sends:
    """The ledger's record of association POSTs whose outcome is not known."""

    def __init__(self, ledger: Ledger, document_id: str, ambiguous: bool) -> None:
        self._ledger = ledger
        self._document_id = document_id
        # A POST may have been recorded by Telnyx without this worker learning of it.
        self.ambiguous = ambiguous

    def note(self) -> None:
        """Recorded before every POST; refused once unknown outcomes went on too long (flow.py)."""
        if not self._ledger.note_send(self._document_id, UNCONFIRMED_SENDS):
            self.ambiguous = True
            raise AttentionError(
                f"{UNCONFIRMED_SENDS.count} or more association attempts over more than "
                f"{UNCONFIRMED_SENDS.span_seconds // 60:.0f} minutes (or {UNCONFIRMED_SENDS.ceiling} "
                "at any pace) ended without a known outcome: "
                "Telnyx may hold this document, perhaps more than once. "
                "Check the draft port request; if it is missing, `portdocs retry` it"
            )

    def settled_by(self, error: PortdocsError) -> PortdocsError:
        """The error to raise once retries are given up: with no doubt left, the intent is cleared;
        a refusal after an unknown outcome says the document may be attached all the same."""
        if not self.ambiguous:
            self._ledger.clear_send(self._document_id)
            return error
        if isinstance(error, PermanentError):
            return PermanentError(str(error), possibly_attached=True)
        return error

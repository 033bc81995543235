"""Telnyx's legacy draft-port-request API (its `/origination` prefix is on Telnyx's retired list)
and its files service: an upload request gives a presigned S3 form, the file goes into it, and
the Location is associated with a draft sub-request."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote_plus
from xml.etree import ElementTree

import requests
from botocore.exceptions import BotoCoreError
from requests_toolbelt import MultipartEncoder

from portdocs.documents import DraftTarget
from portdocs.errors import ConfigurationError, PermanentError, TransientError
from portdocs.intake import ByteStream
from portdocs.retrying import Deadline
from portdocs.telnyx_http import (
    PERMANENT_STATUSES,
    REASON_TEXT_MAX,
    UPLOAD_TIMEOUT,
    ApiCall,
    SizedReader,
    TelnyxHttp,
    intake_stream_broke,
    read_answer,
    retry_after_seconds,
)
from portdocs.urls import check_url_allowed, redacted

# S3 error codes (of the files service) that a retry cures, whatever the status they came with.
S3_TRANSIENT_CODES = frozenset(
    {"RequestTimeout", "IncompleteBody", "SlowDown", "ExpiredToken", "InternalError", "ServiceUnavailable"}
)
# A policy condition S3 quotes in its message (["starts-with", "$key", "direct-uploads/..."]).
_QUOTED_CONDITION = re.compile(r"\[[^\]]*\]|\{[^}]*\}")


@dataclass(frozen=True)
class UploadForm:
    """A presigned S3 POST form; its fields (policy, signature) are secrets and never printed."""

    url: str
    fields: dict[str, str] = field(repr=False)
    file_field: str = "file"

    def location_for(self, file_name: str) -> str:
        """The URL S3 would return in Location, for servers that send none."""
        key = self.fields.get("key", "${filename}").replace("${filename}", file_name)
        return f"{self.url.rstrip('/')}/{quote_plus(key, safe='')}"


@dataclass(frozen=True)
class DraftAssociation:
    """What the association asks Telnyx to record."""

    target: DraftTarget
    description: str
    location_url: str


class DraftPortRequestsApi:
    def __init__(
        self,
        http: TelnyxHttp,
        allowed_upload_hosts: tuple[str, ...],
        upload_session: requests.Session | None = None,
    ) -> None:
        self._http = http
        self._allowed_upload_hosts = allowed_upload_hosts
        # A session of its own for the presigned form: Telnyx credentials must never reach S3.
        self._uploads = upload_session or requests.Session()

    def request_upload_form(self, content_type: str, deadline: Deadline) -> UploadForm:
        # Asking for a form changes nothing on Telnyx's side.
        call = ApiCall(
            "POST", "/files/upload_requests", json={"content_type": content_type}, names_a_resource=False
        )
        response = self._http.send(call, deadline)
        try:
            body = response.json()
            form = UploadForm(
                url=str(body["url"]),
                fields={str(k): str(v) for k, v in dict(body["form_fields"]).items()},
                file_field=str(body.get("file_form_field") or "file"),
            )
            method = str(body.get("http_method", "POST")).upper()
        except (ValueError, KeyError, TypeError):
            raise TransientError("Telnyx returned an upload request without a usable form") from None
        if method != "POST":
            raise TransientError(f"Telnyx asked for an unsupported upload method {method[:16]!r}")
        self._check_host(form.url, "refusing Telnyx's upload form")
        return form

    def upload(
        self,
        form: UploadForm,
        file_name: str,
        body: ByteStream,
        size: int,
        content_type: str,
        deadline: Deadline,
    ) -> str:
        """Streams the file into the form (file part last, as S3 requires); returns Location."""
        encoder = MultipartEncoder(
            fields=[
                *form.fields.items(),
                (form.file_field, (file_name, SizedReader(body, size, deadline), content_type)),
            ]
        )
        try:
            response = self._uploads.post(
                form.url,
                data=encoder,
                headers={"Content-Type": encoder.content_type},
                timeout=deadline.cap(UPLOAD_TIMEOUT),
                allow_redirects=False,
                stream=True,
            )
            read_answer(response, deadline, "upload to the files service")
        except requests.RequestException as error:
            raise TransientError(f"upload to the files service failed: {type(error).__name__}") from None
        except BotoCoreError as error:
            raise intake_stream_broke(error) from None
        if response.status_code in (200, 201, 204):
            location = response.headers.get("Location") or form.location_for(file_name)
            self._check_host(location, "the files service answered with a refused Location")
            return location
        raise _files_service_failure(
            response, (form.location_for(file_name), file_name, *form.fields.values())
        )

    def associate(self, association: DraftAssociation, deadline: Deadline) -> str | None:
        """Telnyx's id of the supporting document, or None when its answer named none (the
        association happened all the same: retrying would double it). Raises AmbiguousError when
        the POST may have been recorded although it failed."""
        target = association.target
        call = ApiCall(
            "POST",
            f"/origination/porting/draft_port_requests/{target.draft_port_request_id}/supporting_documents",
            json={
                "document_type": str(target.document_type),
                "description": association.description,
                "url": association.location_url,
                "draft_sub_request_id": target.draft_sub_request_id,
            },
            repeatable=False,
        )
        response = self._http.send(call, deadline)
        try:
            return str(response.json()["id"])
        except (ValueError, KeyError, TypeError):
            return None

    def _check_host(self, url: str, what: str) -> None:
        try:
            check_url_allowed(url, self._allowed_upload_hosts)
        except PermanentError as error:
            # Not the document's fault: the allow-list or Telnyx changed. Keep it for redrive.
            raise ConfigurationError(f"{what}: {error}") from None


def _files_service_failure(response: requests.Response, sent: tuple[str, ...]) -> Exception:
    code, detail = _s3_error(response, sent)
    if code in S3_TRANSIENT_CODES:
        return TransientError(
            f"the files service answered {response.status_code} {detail}",
            retry_after=retry_after_seconds(response),
        )
    if response.status_code == 403:
        # Expired or refused form: a fresh upload request is the cure, so retry.
        return TransientError(f"the files service refused the form (403 {detail})")
    if response.status_code in PERMANENT_STATUSES:
        return PermanentError(f"the files service rejected the file ({response.status_code} {detail})")
    return TransientError(
        f"the files service answered {response.status_code} {detail}",
        retry_after=retry_after_seconds(response),
    )


def _s3_error(response: requests.Response, sent: tuple[str, ...]) -> tuple[str | None, str]:
    """S3's XML error Code, and Code and Message as text, without echoing anything else: no
    quoted condition (the key is among them: the Location's path) and nothing `sent` (redacted)."""
    try:
        # The body comes from an allow-listed host; Python's expat refuses entity-expansion bombs.
        root = ElementTree.fromstring(response.content)  # noqa: S314
    except ElementTree.ParseError:
        return None, "(no S3 error document)"
    code = root.findtext("Code")
    message = _QUOTED_CONDITION.sub("…", root.findtext("Message") or "")
    parts = [code, redacted(message, *sent)]
    return code, ": ".join(p for p in parts if p)[:REASON_TEXT_MAX] or "(no S3 error code)"

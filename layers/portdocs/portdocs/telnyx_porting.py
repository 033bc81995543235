"""What the poller reads of Telnyx's v2 porting API after the documents are attached: the porting
events since a moment, an order, its requirements, and a document's review. Reads only: every call
is a GET, safe to repeat."""

from __future__ import annotations

from typing import Any

from portdocs.errors import TransientError
from portdocs.retrying import Deadline
from portdocs.telnyx_http import ApiCall, Auth, TelnyxHttp

# Telnyx's largest page: fewer calls per poll.
PAGE_SIZE = 250
# A requirement in one of these is not waiting for anyone (Telnyx's requirement_status values).
MET_REQUIREMENTS = frozenset({"approved", "requirement-info-approved"})


class PortingApi:
    def __init__(self, http: TelnyxHttp) -> None:
        self._http = http

    def events_since(self, created_at_gte: str, page: int, deadline: Deadline) -> tuple[list[Any], int]:
        """One page of the account's porting events created at or after `created_at_gte`, oldest
        first, and the page count."""
        answer = self._get(
            "/v2/porting/events",
            deadline,
            params={
                "filter[created_at][gte]": created_at_gte,
                "page[number]": str(page),
                "page[size]": str(PAGE_SIZE),
            },
            names_a_resource=False,
        )
        items = answer.get("data")
        if not isinstance(items, list):
            raise TransientError("Telnyx listed its porting events in an unusable form")
        return items, _pages(answer)

    def order(self, porting_order_id: str, deadline: Deadline) -> dict[str, Any]:
        order = self._get(f"/v2/porting_orders/{porting_order_id}", deadline).get("data")
        if not isinstance(order, dict):
            raise TransientError("Telnyx described the porting order in an unusable form")
        return order

    def unmet_requirements(self, porting_order_id: str, deadline: Deadline) -> list[str]:
        """The names of the order's requirements that are not met, as a person reads them."""
        unmet: list[str] = []
        page, pages = 1, 1
        while page <= pages:
            answer = self._get(
                f"/v2/porting_orders/{porting_order_id}/requirements",
                deadline,
                params={"page[number]": str(page), "page[size]": str(PAGE_SIZE)},
            )
            for requirement in answer.get("data") or ():
                if (
                    isinstance(requirement, dict)
                    and requirement.get("requirement_status") not in MET_REQUIREMENTS
                ):
                    kind = requirement.get("requirement_type") or {}
                    name = kind.get("name") if isinstance(kind, dict) else None
                    unmet.append(f"{name or 'requirement'} ({requirement.get('requirement_status')})")
            page, pages = page + 1, _pages(answer)
        return unmet

    def document(self, telnyx_document_id: str, deadline: Deadline) -> dict[str, Any]:
        document = self._get(f"/v2/documents/{telnyx_document_id}", deadline).get("data")
        if not isinstance(document, dict):
            raise TransientError("Telnyx described the document in an unusable form")
        return document

    def _get(
        self,
        path: str,
        deadline: Deadline,
        params: dict[str, str] | None = None,
        names_a_resource: bool = True,
    ) -> dict[str, Any]:
        call = ApiCall("GET", path, params=params, auth=Auth.API_KEY, names_a_resource=names_a_resource)
        try:
            answer = self._http.send(call, deadline).json()
        except (ValueError, RecursionError):
            raise TransientError(f"Telnyx answered GET {path.split('/')[2]} with no JSON") from None
        if not isinstance(answer, dict):
            raise TransientError(f"Telnyx answered GET {path.split('/')[2]} in an unusable form")
        return answer


def _pages(answer: dict[str, Any]) -> int:
    meta = answer.get("meta")
    try:
        return max(1, int((meta or {}).get("total_pages") or 1))
    except (TypeError, ValueError, AttributeError):
        return 1

"""Whether a porting order takes documents, asked of Telnyx before anything is uploaded for it: by
the uploader (an upload for a mistyped or closed order would leave a document nothing links,
deleted by Telnyx 30 minutes later) and by `portdocs bulk --dry-run`, with the same rule.

Which statuses take documents comes from Telnyx's porting lifecycle (docs/orders.md): an order is
worked on in `draft`, `in-process`, `submitted` and `exception` (documents are how an exception is
fixed) and may still be asked for one in `foc-date-confirmed`; it is closed in `ported` and
`cancelled` (a cancelled order cannot be reactivated) and on its way there in `cancel-pending`.
A status Telnyx adds later is let through: Telnyx, not this guess, then has the last word."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from cachetools import TTLCache, cached

from portdocs.errors import PermanentError
from portdocs.porting_status import OrderStatus
from portdocs.retrying import Deadline, note_retry, with_retries
from portdocs.telnyx_porting import PortingApi
from portdocs.timestamps import utc_iso

CLOSED_TO_DOCUMENTS = frozenset({OrderStatus.PORTED, OrderStatus.CANCELLED, OrderStatus.CANCEL_PENDING})
# What one read of an order answers for: long enough that a bulk run of hundreds of documents to
# the same orders reads each order about once per execution environment, short enough that an
# order cancelled meanwhile is seen within a minute.
ANSWER_SECONDS = 60
# Orders remembered at once per execution environment (a few hundred bytes each).
ORDERS_REMEMBERED = 4096


def refusal_of(porting_order_id: str, order: dict[str, Any]) -> str | None:
    """Why the order, as Telnyx describes it, takes no documents; None when it takes them. A status
    in a shape not documented (a plain string, a list) is read where it can be, else let through."""
    status = order.get("status")
    value = status.get("value") if isinstance(status, dict) else status
    if isinstance(value, str) and value in CLOSED_TO_DOCUMENTS:
        return f"porting order {porting_order_id} is {value} on Telnyx: it takes no more documents"
    return None


class NoSuchOrder(PermanentError):
    """Telnyx has no such order for this account; not remembered, as it may be being created."""


class OrderCheck:
    """Refuses, with the reason, a document for an order that does not exist or takes no documents.
    What an order's status says is remembered for ANSWER_SECONDS; that it does not exist is not
    (an upload may race the order's creation), nor a read that failed. Records a batch runs side by
    side wait for one read of their order rather than each making its own (cachetools'
    condition)."""

    def __init__(
        self, api: PortingApi, seconds: float = ANSWER_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._api = api
        answers: TTLCache[Any, str | None] = TTLCache(ORDERS_REMEMBERED, seconds, timer=clock)
        self._remembered = cached(answers, key=_by_order, condition=threading.Condition())(self._read)

    def check(self, porting_order_id: str, deadline: Deadline) -> None:
        refusal = self.refusal(porting_order_id, deadline)
        if refusal is not None:
            raise PermanentError(refusal)

    def refusal(self, porting_order_id: str, deadline: Deadline) -> str | None:
        """None when the order takes documents; why not otherwise. TransientError (or
        ConfigurationError) when Telnyx could not be asked."""
        try:
            return self._remembered(porting_order_id, deadline)
        except NoSuchOrder as missing:
            return str(missing)

    def _read(self, porting_order_id: str, deadline: Deadline) -> str | None:
        try:
            order = with_retries(
                lambda: self._api.order(porting_order_id, deadline), deadline, on_retry=note_retry
            )
        except PermanentError as error:  # 404 above all: a mistyped id, another account's order...
            self._confirm_api_is_there(deadline)  # ...or a wrong base URL, which 404s every order
            raise NoSuchOrder(
                f"Telnyx has no porting order {porting_order_id} for this account ({error}): check the id"
            ) from None
        return refusal_of(porting_order_id, order)

    def _confirm_api_is_there(self, deadline: Deadline) -> None:
        """ConfigurationError (the document kept for redrive) when the API itself is not at the base
        URL: a call that names no resource cannot 404 for the resource's sake
        (telnyx_http.ApiCall.names_a_resource)."""
        now = utc_iso(time.time())
        with_retries(lambda: self._api.events_since(now, 1, deadline), deadline, on_retry=note_retry)


def _by_order(porting_order_id: str, deadline: Deadline) -> str:
    return porting_order_id

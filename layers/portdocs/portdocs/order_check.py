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

CLOSED_TO_DOCUMENTS = frozenset({OrderStatus.PORTED, OrderStatus.CANCELLED, OrderStatus.CANCEL_PENDING})
# What one read of an order answers for: long enough that a bulk run of hundreds of documents to
# the same orders reads each order about once per execution environment, short enough that an
# order cancelled meanwhile is seen within a minute.
ANSWER_SECONDS = 60
# Orders remembered at once per execution environment (a few hundred bytes each).
ORDERS_REMEMBERED = 4096


def refusal_of(porting_order_id: str, order: dict[str, Any]) -> str | None:
    """Why the order, as Telnyx describes it, takes no documents; None when it takes them."""
    status = order.get("status")
    value = status.get("value") if isinstance(status, dict) else None
    if value in CLOSED_TO_DOCUMENTS:
        return f"porting order {porting_order_id} is {value} on Telnyx: it takes no more documents"
    return None


class OrderCheck:
    """Refuses, with the reason, a document for an order that does not exist or takes no documents.
    Answers are remembered for ANSWER_SECONDS, refusals too (a bulk run's mistyped order is read
    once, not once per document); a read that failed is not remembered. Records a batch runs side
    by side wait for one read of their order rather than each making its own (cachetools'
    condition)."""

    def __init__(
        self, api: PortingApi, seconds: float = ANSWER_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._api = api
        answers: TTLCache[Any, str | None] = TTLCache(ORDERS_REMEMBERED, seconds, timer=clock)
        self.refusal = cached(answers, key=_by_order, condition=threading.Condition())(self._read)

    def check(self, porting_order_id: str, deadline: Deadline) -> None:
        refusal = self.refusal(porting_order_id, deadline)
        if refusal is not None:
            raise PermanentError(refusal)

    def _read(self, porting_order_id: str, deadline: Deadline) -> str | None:
        """None when the order takes documents; why not otherwise. TransientError (or
        ConfigurationError) when Telnyx could not be asked."""
        try:
            order = with_retries(
                lambda: self._api.order(porting_order_id, deadline), deadline, on_retry=note_retry
            )
        except PermanentError as error:  # 404 above all: a mistyped id, or another account's order
            return f"Telnyx has no porting order {porting_order_id} for this account ({error}): check the id"
        return refusal_of(porting_order_id, order)


def _by_order(porting_order_id: str, deadline: Deadline) -> str:
    return porting_order_id

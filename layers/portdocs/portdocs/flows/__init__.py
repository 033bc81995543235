"""One module per Telnyx flow: what differs between draft port requests and porting orders lives
there and nowhere else. The flow is chosen here, once, from the document's target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from portdocs.documents import Association, DraftTarget, PortingOrderTarget, Target
from portdocs.flows.draft import DraftFlow
from portdocs.flows.flow import Flow
from portdocs.flows.porting_order import PortingOrderFlow

if TYPE_CHECKING:
    from portdocs.ledger import Ledger
    from portdocs.telnyx_http import TelnyxHttp

__all__ = ["FLOWS", "Association", "Flow", "FlowParts", "Flows", "flow_type"]

# Which flow takes which target. A new flow is a module of this package and one line here.
FLOWS: dict[type[Target], type[DraftFlow] | type[PortingOrderFlow]] = {
    DraftTarget: DraftFlow,
    PortingOrderTarget: PortingOrderFlow,
}


def flow_type(target: Target) -> type[DraftFlow] | type[PortingOrderFlow]:
    """The flow class, for what it says without adapters (its limits, its message fields)."""
    return FLOWS[type(target)]


@dataclass(frozen=True)
class FlowParts:
    """What the flows are made of: one Telnyx HTTP client (one rate-limit gate for the account)
    and the adapters they share with the services."""

    http: TelnyxHttp
    ledger: Ledger
    allowed_upload_hosts: tuple[str, ...]


class Flows:
    def __init__(self, parts: FlowParts) -> None:
        self._flows = {kind: flow(parts) for kind, flow in FLOWS.items()}

    def of(self, target: Target) -> Flow[Any, Any]:
        """The flow of `target`: its targets and uploads are the ones it is given, by construction."""
        return self._flows[type(target)]

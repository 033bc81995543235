"""Tells a person, in words, that a porting order needs them: one SNS message naming the order, its
customer reference, Telnyx's codes and descriptions, the latest comment and what to do.

Best effort, like the events: the orders table already holds the change (`portdocs orders
--needs-action` shows it), so a notice that could not be sent is counted and logged, never retried
into a second copy of the work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from portdocs.documents import PortingOrderTarget
from portdocs.ledger import LedgerEntry
from portdocs.observability import count, logger
from portdocs.orders import OrderRecord, document_type_of
from portdocs.porting_status import advice_for, drop_folder

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

# SNS: a subject of at most 100 printable ASCII characters, no line breaks.
SUBJECT_MAX = 100


def needs_action_notice(
    order: OrderRecord, why: str, denied: list[LedgerEntry], bucket: str
) -> tuple[str, str]:
    """(subject, message) of the notice: plain text, every line from Telnyx already made safe to
    show (portdocs.porting_status.printable)."""
    reference = f" ({order.customer_reference})" if order.customer_reference else ""
    subject = _ascii(f"portdocs: porting order {order.porting_order_id[:8]}{reference} needs action")
    lines = [
        f"Porting order {order.porting_order_id}{reference} {why}.",
        f"Status: {order.status or 'not yet known'}"
        + (f" (support key {order.support_key})" if order.support_key else ""),
    ]
    for detail in order.details:
        lines += [f"- {detail.code}: {detail.description}", f"  What to do: {advice_for(detail.code)}."]
    for entry in denied:
        lines.append(f"- {denied_step(order.porting_order_id, entry, f's3://{bucket}/')}")
    if order.unmet_requirements:
        lines.append("Requirements not met: " + "; ".join(order.unmet_requirements))
    if order.comment:
        lines += ["", f"Latest comment ({order.comment_by or 'unknown'}, {order.comment_at}):", order.comment]
    lines += [
        "",
        "`portdocs orders --needs-action` lists the orders in exception, with a denied document or"
        " with a newer comment from Telnyx's staff.",
    ]
    return subject, "\n".join(lines)


def denied_step(porting_order_id: str, entry: LedgerEntry, location: str = "") -> str:
    """What to do about one denied document: an LOA or invoice dropped again replaces the order's;
    any other type is added beside the denied one (Telnyx keeps both)."""
    kind = document_type_of(entry)
    if kind is None:
        return f"Telnyx denied document {entry.document_id}."
    reason = f" ({entry.review_reason})" if entry.review_reason else ""
    folder = f"{location}{drop_folder(porting_order_id, kind)}"
    effect = (
        "it replaces the denied one"
        if PortingOrderTarget(porting_order_id, kind).is_order_document
        else ("it is added beside the denied one")
    )
    return f"Telnyx denied the {kind}{reason}. What to do: drop a corrected {kind} at {folder} ({effect})."


def _ascii(text: str) -> str:
    kept = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    return kept[:SUBJECT_MAX]


class Notices:
    def __init__(self, sns_client: SNSClient, topic_arn: str, intake_bucket: str) -> None:
        self._sns = sns_client
        self._topic_arn = topic_arn
        self._bucket = intake_bucket

    def needs_action(self, order: OrderRecord, why: str, denied: list[LedgerEntry]) -> None:
        subject, message = needs_action_notice(order, why, denied, self._bucket)
        try:
            self._sns.publish(TopicArn=self._topic_arn, Subject=subject, Message=message)
        except (ClientError, BotoCoreError) as error:
            count("NoticesNotSent")
            logger.warning("could not send the needs-action notice", extra={"error": type(error).__name__})
            return
        count("NoticesSent")

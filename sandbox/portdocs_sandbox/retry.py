"""`portdocs retry`: a person puts a document back through the pipeline on purpose."""

from __future__ import annotations

import json

from botocore.exceptions import BotoCoreError, ClientError

from portdocs.documents import State
from portdocs.errors import PermanentError
from portdocs.ledger import Ledger
from portdocs.resend import Queue, resend_of
from portdocs_sandbox import ledger_admin
from portdocs_sandbox.target import CliError, Target

RETRYABLE_STATES = (State.REJECTED, State.SUPERSEDED, State.FAILED)
QUEUE_OUTPUTS = {Queue.INTAKE: "IntakeQueueUrl", Queue.ASSOCIATION: "AssociationQueueUrl"}


def retry_document(target: Target, document_id: str) -> str:
    """Puts one document back through the pipeline on purpose (its reason was fixed outside:
    a sub-request created, a credential fixed). Safe to run twice: the ledger reopens a document
    only from a retryable state, so a second run (or a run after it was associated) sends
    nothing. Returns what was done, for the operator."""
    table = target.table()
    try:
        entry = ledger_admin.entry(table, document_id)
        if entry is None:
            raise CliError(f"no document {document_id!r} in the ledger (see `portdocs status --json`)")
        resend = resend_of(entry)
    except (PermanentError, ValueError) as error:
        raise CliError(f"{document_id}: cannot be retried as recorded: {error}") from None
    if resend is None:
        return f"{document_id}: cannot be retried: the message named no document; send it again, corrected"
    queue = QUEUE_OUTPUTS[resend.queue]
    if not ledger_admin.reopen(table, document_id, RETRYABLE_STATES):
        retryable = ", ".join(RETRYABLE_STATES)
        return (
            f"{document_id}: not retried: it is {entry.state} (retried: {retryable}, "
            f"and received or uploaded untouched for {ledger_admin.STALE_AFTER_SECONDS // 60} minutes)"
        )
    try:
        target.client("sqs").send_message(QueueUrl=target.outputs[queue], MessageBody=json.dumps(resend.body))
    except (BotoCoreError, ClientError) as error:
        # Reopened but not sent: leave it retryable, not looking as if it were in flight.
        Ledger(table).mark_failed(document_id, f"portdocs retry could not send it: {error}")
        raise CliError(f"{document_id}: reopened but not sent ({error}); run portdocs retry again") from None
    request = "association" if resend.queue is Queue.ASSOCIATION else "upload"
    return f"{document_id}: sent again ({request} request)"

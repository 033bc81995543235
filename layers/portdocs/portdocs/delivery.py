"""What the record being worked on knows of its own delivery: how many times SQS has handed it out.

Each record runs in a context of its own (portdocs.handler), so this is per record.
"""

from __future__ import annotations

from contextvars import ContextVar

# The queues' maxReceiveCount (template.yaml; tests/unit/test_template.py keeps the two in step):
# a record that fails on this receive goes to the dead-letter queue.
MAX_RECEIVES = 5

_receives: ContextVar[int] = ContextVar("receives", default=1)


def received(times: int) -> None:
    _receives.set(times)


def is_last_receive() -> bool:
    return _receives.get() >= MAX_RECEIVES

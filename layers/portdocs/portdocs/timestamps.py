"""The one way portdocs writes and reads a moment: ISO 8601 in UTC, from epoch seconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final, Literal

from portdocs.errors import PermanentError

# The ledger has always written "+00:00", and its times are compared as strings (the sweeper's
# `updated_at < :before`): deployed items must keep sorting against new ones, so it keeps it.
LEDGER_ZONE: Final = "+00:00"


def utc_iso(
    epoch_seconds: float,
    timespec: Literal["seconds", "milliseconds"] = "seconds",
    zone: Literal["Z", "+00:00"] = "Z",
) -> str:
    """Messages and events say "Z"; events add milliseconds; the ledger says LEDGER_ZONE."""
    text = datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec=timespec)
    return text if zone == LEDGER_ZONE else text.replace("+00:00", "Z")


def parse_utc_iso(text: str) -> float:
    """Epoch seconds of an ISO 8601 time that can also be written back (utc_iso): a time at the
    very edge of the calendar ("9999-12-31T23:59:59-01:00") parses, but not in UTC."""
    try:
        seconds = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        utc_iso(seconds)
    except (ValueError, OverflowError, OSError):
        raise PermanentError(f"{text[:40]!r} is not an ISO 8601 time portdocs can keep") from None
    return seconds

"""What a sending command checks of a file before anything is dropped: the checks the uploader
makes (portdocs.file_check), made on the operator's machine first."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from portdocs.documents import Target as DocumentTarget
from portdocs.documents import check_size
from portdocs.formats import CHECK_SECONDS
from portdocs_sandbox.target import Target

if TYPE_CHECKING:
    from portdocs.flows.draft import DraftFlow
    from portdocs.flows.porting_order import PortingOrderFlow


def flow_of(destination: DocumentTarget) -> type[DraftFlow] | type[PortingOrderFlow]:
    """The target's flow, for what it says without adapters: its limits, its message fields.

    Imported here, not at the top: a sandbox worker process imports this module first (spawn
    imports the parent's main module), before its function's environment is set; the flows bring
    portdocs' logger, which would then be made for no function and write to the sandbox's output
    instead of the function's log stream (tests/e2e holds both)."""
    from portdocs.flows import flow_type

    return flow_type(destination)


def check_before_drop(file: Path, target: Target, destination: DocumentTarget) -> str:
    """The checks the uploader makes (portdocs.file_check), made here first: a refused file is
    named before anything is dropped. Returns the file's content type as sniffed."""
    from portdocs.file_check import check_for_target
    from portdocs.retrying import Deadline

    check_size(file.stat().st_size, target.max_document_bytes)
    with tempfile.TemporaryDirectory(prefix="portdocs-drop-") as folder:
        checked = check_for_target(
            file,
            Path(folder, "converted"),
            file.name,
            target.allowed_content_types,
            destination,
            flow_of(destination).check_fits,
            # A whole check's time and some: a file that takes all of it is refused, not deferred.
            Deadline(time.monotonic() + CHECK_SECONDS + 10),
        )
    return checked.received_content_type

"""The pre-flight check of every file before it goes to Telnyx, and its conversion where the
target needs another format (portdocs.formats): run in a worker process with its own memory
limit and time (portdocs.file_check_worker), one at a time per Lambda, so a file built to exhaust
or crash a reader costs that file a refusal and nothing else.

Why a process and not a thread: Python cannot stop a thread caught in a parser's loop, and a
fault in a C decoder (libtiff, libheif) would end the Lambda's whole batch, which SQS would then
deliver again and again, into its dead-letter queue."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portdocs.documents import SNIFF_BYTES, check_content_type
from portdocs.errors import ConfigurationError, DeferredError, PermanentError, TransientError
from portdocs.formats import CHECK_SECONDS, Handling, converted_name, format_of
from portdocs.observability import logger

if TYPE_CHECKING:
    from portdocs.documents import Target
    from portdocs.retrying import Deadline

# A flow's check of what its Telnyx service takes: (file name, size, content type).
Fits = Callable[[str, int, str], None]

# What the Lambda itself keeps, out of its memory, while a worker runs: its own peak with a batch
# in flight, and the worker's shared libraries, which its limit does not count.
PARENT_RESERVE_MIB = 384
# Outside Lambda (the sandbox, the tests): the deployed uploader's memory (template.yaml).
DEFAULT_FUNCTION_MIB = 1024
PR_SET_DUMPABLE = 4  # <linux/prctl.h>
LOCAL_FOLDER_PREFIX = "portdocs-check-"
# Longer than the uploader's timeout (template.yaml): a folder this old has no invocation using it.
LEFTOVER_AFTER_SECONDS = 15 * 60
# One worker at a time: its memory limit is what the function can spare once, not per record.
_ONE_AT_A_TIME = threading.Lock()


@dataclass(frozen=True)
class CheckedFile:
    """What goes to Telnyx: the file as received, or what it was converted to."""

    path: Path
    file_name: str
    content_type: str
    size: int
    pages: int
    # The sniffed content type of the file as received, when it was converted.
    converted_from: str | None = None
    # The sha256 (hex) of the file as received, whatever was made of it.
    received_sha256: str | None = None

    @property
    def received_content_type(self) -> str:
        """The sniffed type of the file as received."""
        return self.converted_from or self.content_type


def local_folder() -> tempfile.TemporaryDirectory[str]:
    """Where one record's file and its conversion sit while it is checked and sent."""
    return tempfile.TemporaryDirectory(prefix=LOCAL_FOLDER_PREFIX)


def clear_leftovers(now: float | None = None) -> None:
    """Removes what an invocation killed mid-check (a timeout, out of memory) left in /tmp, which
    Lambda keeps for the next: at a cold start, folders older than any invocation still running."""
    cutoff = (time.time() if now is None else now) - LEFTOVER_AFTER_SECONDS
    for folder in Path(tempfile.gettempdir()).glob(f"{LOCAL_FOLDER_PREFIX}*"):
        with contextlib.suppress(OSError):  # another process's, removed meanwhile
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)


def worker_memory_bytes() -> int:
    function_mib = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", DEFAULT_FUNCTION_MIB))
    return max(function_mib - PARENT_RESERVE_MIB, 128) * 1024 * 1024


def check_for_target(
    path: Path,
    output: Path,
    file_name: str,
    allowed_content_types: tuple[str, ...],
    target: Target,
    fits: Fits,
    deadline: Deadline,
) -> CheckedFile:
    """The file at `path`, its type sniffed from its bytes and held to `allowed_content_types`,
    checked, converted into `output` if its target needs another format, and checked as the
    target's Telnyx service would (`fits`, the flow's check). PermanentError, with the reason, when
    it is refused. The uploader and `portdocs drop` both check a file through here."""
    with path.open("rb") as file:
        content_type = check_content_type(file.read(SNIFF_BYTES), allowed_content_types)
    handling = format_of(content_type).handling(target)
    if handling is Handling.AS_IS:  # what the service would refuse anyway is not read first
        fits(file_name, path.stat().st_size, content_type)
    checked = check_file(path, output, file_name, content_type, handling, deadline)
    try:
        fits(checked.file_name, checked.size, checked.content_type)
    except PermanentError as error:
        if checked.converted_from is None:
            raise
        raise PermanentError(f"converted {handling.value} for its target: {error}") from None
    return checked


def check_file(
    path: Path, output: Path, file_name: str, content_type: str, handling: Handling, deadline: Deadline
) -> CheckedFile:
    """Checks the file at `path` (sniffed as `content_type`) and converts it into `output` as
    `handling` says. PermanentError, with the reason, when the file is refused."""
    request = {
        "path": str(path),
        "output": str(output),
        "content_type": content_type,
        "handling": handling.value,
        "memory_bytes": worker_memory_bytes(),
    }
    answer = _run_worker(request, deadline)
    if "refused" in answer:
        raise PermanentError(str(answer["refused"]))
    converted = handling is not Handling.AS_IS
    sent = output if converted else path
    with path.open("rb") as received:
        received_sha256 = hashlib.file_digest(received, "sha256").hexdigest()
    return CheckedFile(
        path=sent,
        file_name=converted_name(file_name, handling),
        content_type=str(answer["content_type"]),
        size=sent.stat().st_size,
        pages=int(answer["pages"]),
        converted_from=content_type if converted else None,
        received_sha256=received_sha256,
    )


def _run_worker(request: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
    _keep_environment_private()
    with _ONE_AT_A_TIME:
        # A check cut short by this invocation's end says nothing about the file: only one given
        # all its time refuses a file for taking it.
        seconds = min(CHECK_SECONDS, deadline.remaining())
        try:
            done = subprocess.run(  # noqa: S603 - this interpreter, our module, JSON in one argument
                [sys.executable, "-m", "portdocs.file_check_worker", json.dumps(request)],
                capture_output=True,
                timeout=max(seconds, 0.1),
                check=False,
                env=_worker_environment(),
            )
        except subprocess.TimeoutExpired:
            if seconds < CHECK_SECONDS:
                raise DeferredError("not enough time left in this invocation to check the file") from None
            raise PermanentError(
                f"the file could not be read within {CHECK_SECONDS} seconds: it may be built to make "
                "a reader loop; save it again from the program that made it"
            ) from None
    return _answer_of(done)


def _worker_environment() -> dict[str, str]:
    """Only where to import from: what this process imports, from where it does (a layer's
    /opt/python in Lambda, the venv here). Nothing else of this process's environment, which holds
    the function role's AWS credentials (and, run locally, Telnyx's): a decoder a hostile file
    took over would find no key to use (and `_keep_environment_private` keeps it from reading
    this process's)."""
    environment = {"PYTHONPATH": os.pathsep.join(path for path in sys.path if path), "PATH": os.defpath}
    # Where Lambda's interpreter finds its own libpython (/var/lang/lib): no secret, and needed.
    if "LD_LIBRARY_PATH" in os.environ:
        environment["LD_LIBRARY_PATH"] = os.environ["LD_LIBRARY_PATH"]
    return environment


@functools.cache
def _keep_environment_private() -> None:
    """Makes this process not dumpable: its /proc files (its environment, with the role's
    credentials; its memory) then belong to root, and a worker (the same user, in Lambda not root)
    cannot read them. Linux only; elsewhere there is no /proc to guard."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def _answer_of(done: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    if done.returncode == -signal.SIGKILL:
        # Not a signal the worker sends itself: the function ran out of memory (the kernel's
        # choice), or the file did outside what the worker's limit counts.
        raise PermanentError(
            "reading the file took more memory than the function has: it may be built to exhaust "
            "a reader; save it again, or scan it at a lower resolution"
        )
    if done.returncode < 0:
        # A signal: a decoder crashed on this file (the worker's own faults end in an answer).
        raise PermanentError(f"the file crashed the reader of its type (signal {-done.returncode})")
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        detail = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
        logger.error("the file checker could not run", extra={"detail": detail})
        raise ConfigurationError(f"the file checker could not run: {''.join(detail) or 'no answer'}")
    answer: dict[str, Any] = json.loads(lines[-1])
    if "no_room" in answer:
        raise TransientError(str(answer["no_room"]))
    return answer

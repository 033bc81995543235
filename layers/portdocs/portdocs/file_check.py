"""The pre-flight check of every file before it goes to Telnyx, and its conversion where the
target needs another format (portdocs.formats): run in a worker process with its own memory
limit and time (portdocs.file_check_worker), one at a time per Lambda, so a file built to exhaust
or crash a reader costs that file a refusal and nothing else.

Why a process and not a thread: Python cannot stop a thread caught in a parser's loop, and a
fault in a C decoder (libtiff, libheif) would end the Lambda's whole batch, which SQS would then
deliver again and again, into its dead-letter queue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portdocs.errors import ConfigurationError, DeferredError, PermanentError
from portdocs.formats import CHECK_SECONDS, Handling, converted_name, format_of
from portdocs.observability import logger

if TYPE_CHECKING:
    from portdocs.documents import Target
    from portdocs.retrying import Deadline

# A flow's check of what its Telnyx service takes: (file name, size, content type).
Fits = Callable[[str, int, str], None]

# What the Lambda itself keeps, out of its memory, while a worker runs.
PARENT_RESERVE_MIB = 256
# Outside Lambda (the sandbox, the tests): the deployed uploader's memory (template.yaml).
DEFAULT_FUNCTION_MIB = 1024
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


def worker_memory_bytes() -> int:
    function_mib = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", DEFAULT_FUNCTION_MIB))
    return max(function_mib - PARENT_RESERVE_MIB, 128) * 1024 * 1024


def check_for_target(
    path: Path,
    output: Path,
    file_name: str,
    content_type: str,
    target: Target,
    fits: Fits,
    deadline: Deadline,
) -> CheckedFile:
    """The file at `path` (sniffed as `content_type`) checked, converted into `output` if its
    target needs another format, and checked as the target's Telnyx service would (`fits`, the
    flow's check). PermanentError, with the reason, when it is refused."""
    handling = format_of(content_type).handling(target)
    if handling is Handling.AS_IS:  # what the service would refuse anyway is not read first
        fits(file_name, path.stat().st_size, content_type)
    checked = check_file(path, output, file_name, content_type, handling, deadline)
    fits(checked.file_name, checked.size, checked.content_type)
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
    return CheckedFile(
        path=sent,
        file_name=converted_name(file_name, handling),
        content_type=str(answer["content_type"]),
        size=sent.stat().st_size,
        pages=int(answer["pages"]),
        converted_from=content_type if converted else None,
    )


def _run_worker(request: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
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
    took over would find no key to use."""
    return {"PYTHONPATH": os.pathsep.join(path for path in sys.path if path), "PATH": os.defpath}


def _answer_of(done: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    if done.returncode < 0:
        # A signal: a decoder crashed on this file (the worker's own faults end in an answer).
        raise PermanentError(f"the file crashed the reader of its type (signal {-done.returncode})")
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        detail = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
        logger.error("the file checker could not run", extra={"detail": detail})
        raise ConfigurationError(f"the file checker could not run: {''.join(detail) or 'no answer'}")
    answer: dict[str, Any] = json.loads(lines[-1])
    return answer

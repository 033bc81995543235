"""Reads a file portdocs does not trust yet, in a process of its own: checks that it is what it
claims and complete, and converts it where its target needs another format (portdocs.formats).

portdocs.file_check runs `python -m portdocs.file_check_worker REQUEST` with a JSON request
(path, content type, handling, output path, memory limit) and reads one JSON line back:
`{"content_type", "pages"}`, `{"refused": reason}`, or `{"no_room": …}` when /tmp is full.
The process is the bound a library cannot give: a file built to make a parser loop, explode in
memory or crash in C ends this process (its memory limit, the parent's timeout), never the
Lambda's batch. Any exception a library raises on
the file is the file's fault and becomes its refusal; only a worker that cannot start (a broken
install) exits without an answer."""

from __future__ import annotations

import errno
import io
import json
import resource
import sys
import warnings
from pathlib import Path
from typing import Any

import img2pdf
import pi_heif
from PIL import Image, ImageOps
from pypdf import PdfReader

from portdocs.formats import CONVERTED, MAX_IMAGE_PIXELS, MAX_TIFF_PAGES, MAX_TIFF_PIXELS, Handling

# A PDF's last line is this marker (PDF 32000-1, 7.5.5), which readers look for in its last
# 1,024 bytes: a file cut short in transfer lacks it. After it, only comments and white space pass
# (some tools add a comment line); anything else is another file riding along (a PDF/ZIP
# polyglot), which a reviewer would not see.
PDF_END_MARKER = b"%%EOF"
PDF_TAIL_BYTES = 1024
JPEG_QUALITY = 90


class Refused(Exception):
    """The file is not what it claims, or not whole: the message says so to a person."""


def check_pdf(path: Path) -> int:
    if not _ends_as_a_pdf(path):
        raise Refused(
            "the PDF does not end as a PDF ends (with its end-of-file marker): it is cut short, or "
            "something else is appended to it; send the PDF as its program saved it"
        )
    reader = PdfReader(path, strict=False)
    if reader.is_encrypted:
        raise Refused(
            "the PDF is encrypted or password-protected: Telnyx's reviewers cannot open it; "
            "save or print it again without a password"
        )
    pages = len(reader.pages)
    if pages == 0:
        raise Refused("the PDF has no pages")
    for page in reader.pages:
        page.get_contents()  # each page's content decodes (its streams are there and whole)
    return pages


def too_many_pixels(what: str) -> Refused:
    return Refused(
        f"{what} is larger than portdocs' limit of {MAX_IMAGE_PIXELS // 1_000_000} megapixels: "
        "scan or photograph it at a lower resolution"
    )


def _ends_as_a_pdf(path: Path) -> bool:
    with path.open("rb") as file:
        file.seek(0, 2)
        file.seek(max(0, file.tell() - PDF_TAIL_BYTES))
        tail = file.read()
    end = tail.rfind(PDF_END_MARKER)
    if end < 0:
        return False
    after = (line.strip(b" \t\r\f\x00") for line in tail[end + len(PDF_END_MARKER) :].split(b"\n"))
    return all(not line or line.startswith(b"%") for line in after)


def _check_frame(image: Image.Image, what: str) -> int:
    """Checks the declared size before any pixel is decoded, then decodes all of them."""
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise too_many_pixels(f"{what} ({width} x {height} pixels)")
    image.load()
    return width * height


def check_image(path: Path) -> int:
    with Image.open(path) as image:
        image.verify()  # the checksums (a PNG's CRCs), which decoding alone does not look at
    with Image.open(path) as image:
        _check_frame(image, f"the {image.format} image")
    return 1


def check_tiff(path: Path) -> int:
    total = 0
    with Image.open(path) as image:
        pages = getattr(image, "n_frames", 1)
        if pages > MAX_TIFF_PAGES:
            raise Refused(f"the TIFF has {pages} pages; portdocs converts at most {MAX_TIFF_PAGES}: split it")
        for page in range(pages):
            image.seek(page)
            total += _check_frame(image, f"page {page + 1} of the TIFF")
            if total > MAX_TIFF_PIXELS:
                raise Refused(
                    f"the TIFF's pages come to more than {MAX_TIFF_PIXELS // 1_000_000} megapixels: "
                    "split it, or scan it at a lower resolution"
                )
    return pages


def tiff_to_pdf(path: Path, output: Path) -> None:
    """Every page, without loss: a fax's CCITT G4 data (one strip a page) copied as it is, other
    pages decoded and compressed losslessly. Except JPEG-coded pages (colour scans): stored
    losslessly they come out several times larger than the TIFF, over the documents service's
    20 MB, so each is saved again as a JPEG of high quality, which img2pdf copies in."""
    pages: str | list[bytes] = str(path)
    with Image.open(path) as image:
        if image.info.get("compression") == "jpeg":
            pages = [_as_jpeg(image, page) for page in range(getattr(image, "n_frames", 1))]
    try:
        pdf = img2pdf.convert(pages, engine=img2pdf.Engine.internal, rotation=img2pdf.Rotation.ifvalid)
    except img2pdf.AlphaChannelError:
        raise Refused("the TIFF has a transparency (alpha) channel: save it without one") from None
    output.write_bytes(pdf)


def _as_jpeg(image: Image.Image, page: int) -> bytes:
    image.seek(page)
    out = io.BytesIO()
    dpi = image.info.get("dpi")
    image.convert("RGB" if image.mode not in ("L", "RGB", "CMYK") else image.mode).save(
        out, "JPEG", quality=JPEG_QUALITY, **({"dpi": dpi} if dpi else {})
    )
    return out.getvalue()


def heic_to_jpeg(path: Path, output: Path) -> None:
    """Turned upright as the phone recorded it; the photo's metadata (its location) is left out."""
    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image).convert("RGB")
        upright.save(output, "JPEG", quality=JPEG_QUALITY, icc_profile=image.info.get("icc_profile"))


CHECKS = {
    "application/pdf": check_pdf,
    "image/tiff": check_tiff,
    "image/jpeg": check_image,
    "image/png": check_image,
    "image/heic": check_image,
}
CONVERSIONS = {
    ("image/tiff", Handling.TO_PDF): tiff_to_pdf,
    ("image/heic", Handling.TO_JPEG): heic_to_jpeg,
}


def check(request: dict[str, Any]) -> dict[str, Any]:
    path, content_type, handling = (
        Path(request["path"]),
        request["content_type"],
        Handling(request["handling"]),
    )
    pages = CHECKS[content_type](path)
    if handling is not Handling.AS_IS:
        CONVERSIONS[content_type, handling](path, Path(request["output"]))
        content_type = CONVERTED[handling][0]
    return {"content_type": content_type, "pages": pages}


def _refusal(error: Exception, request: dict[str, Any]) -> dict[str, str]:
    """A library's message, without the worker's temporary paths in it."""
    detail = str(error).replace(request["path"], "the file").replace(request["output"], "the converted file")
    return {"refused": f"the file could not be read as its type ({type(error).__name__}: {detail})"}


def main() -> int:
    request = json.loads(sys.argv[1])
    # Private memory (heap and anonymous mappings) beyond this fails an allocation here, which
    # Python and Pillow raise as MemoryError: the file is refused and the Lambda lives on.
    resource.setrlimit(resource.RLIMIT_DATA, (request["memory_bytes"], request["memory_bytes"]))
    # Pillow's own bomb check, in step with ours (it warns at the limit and refuses at twice it).
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    pi_heif.register_heif_opener()
    try:
        answer = check(request)
    except Refused as refused:
        answer = {"refused": str(refused)}
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # as Pillow opens it
        answer = {"refused": str(too_many_pixels("the image"))}
    except OSError as error:  # a full /tmp is the function's, not the file's
        no_room = error.errno == errno.ENOSPC
        answer = (
            {"no_room": "no room left in /tmp to check the file"} if no_room else _refusal(error, request)
        )
    except MemoryError:
        answer = {
            "refused": "the file needs more memory to read than a document can: it may be built to"
            " exhaust a reader; save it again, or scan it at a lower resolution"
        }
    except Exception as error:  # whatever a library raises on this file is the file's fault
        answer = _refusal(error, request)
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())

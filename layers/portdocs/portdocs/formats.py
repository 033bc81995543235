"""What portdocs takes, per flow, and what it sends Telnyx in its place: the one table of formats,
and the bounds within which a file is read.

Every document type (LOA, invoice, CSR, other) takes the same formats. Telnyx's reviewers read
each one by eye, and all four are documents a person signed or a carrier issued: a PDF, a scan or
a photo. The v2 documents service would also take CSV, JSON, plain text, Word and Excel files;
portdocs does not accept them for any type:
- a CSV or a text file has no magic number, so only its name would say what it is, and nothing
  in it can be checked before Telnyx's reviewer opens it;
- Word and Excel files are ZIP containers that could not be checked with the care a PDF gets
  here (their own bombs, macros);
- a carrier's CSR sent as a spreadsheet is exported to PDF by the person who has it, in a minute,
  and the reviewer then sees what the carrier sent.
docs/formats.md says this for users."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from portdocs.documents import DraftTarget, PortingOrderTarget, Target
from portdocs.errors import PermanentError


class Handling(enum.StrEnum):
    AS_IS = "as is"
    TO_PDF = "to PDF"
    TO_JPEG = "to JPEG"


@dataclass(frozen=True)
class Format:
    content_type: str  # as sniffed from the bytes (portdocs.documents.sniff_content_type)
    name: str
    draft: Handling
    porting_order: Handling

    def handling(self, target: Target) -> Handling:
        return {DraftTarget: self.draft, PortingOrderTarget: self.porting_order}[type(target)]


# A TIFF (fax, scanner) becomes a PDF for porting orders, whose documents service takes no TIFF;
# the files service of drafts takes it as it is. A HEIC photo becomes a JPEG for both: browsers
# other than Safari cannot show HEIC, and a reviewer must see it.
FORMATS = (
    Format("application/pdf", "PDF", draft=Handling.AS_IS, porting_order=Handling.AS_IS),
    Format("image/jpeg", "JPEG", draft=Handling.AS_IS, porting_order=Handling.AS_IS),
    Format("image/png", "PNG", draft=Handling.AS_IS, porting_order=Handling.AS_IS),
    Format("image/tiff", "TIFF", draft=Handling.AS_IS, porting_order=Handling.TO_PDF),
    Format("image/heic", "HEIC", draft=Handling.TO_JPEG, porting_order=Handling.TO_JPEG),
)
FORMATS_BY_TYPE = {format_.content_type: format_ for format_ in FORMATS}
CONTENT_TYPES = tuple(FORMATS_BY_TYPE)
# What a conversion makes, and the extension the file gets (Telnyx shows the name to reviewers).
CONVERTED = {
    Handling.TO_PDF: ("application/pdf", ".pdf"),
    Handling.TO_JPEG: ("image/jpeg", ".jpg"),
}

# The extensions a converted file's name loses.
CONVERTED_EXTENSIONS = frozenset({"tif", "tiff", "heic", "heif"})

# Bounds on reading a file, so that a file built to exhaust a reader is refused instead.
# 50 megapixels: a page scanned at 600 dpi (A4 or Letter: 35 MP) and a 48 MP phone photo fit.
MAX_IMAGE_PIXELS = 50_000_000
# Pages of a TIFF converted to one PDF (a faxed LOA has a few; a longer one is split by its sender).
MAX_TIFF_PAGES = 100
# All pages of a TIFF together: 100 fine-mode fax pages (1728 x 2292 each) come to 400 MP.
MAX_TIFF_PIXELS = 500_000_000
# Wall-clock time a check (and its conversion) may take before the file is refused as unreadable:
# a 24 MiB JPEG-coded colour TIFF converts in 6 s on the development machine, so about three times
# that on the uploader's share of a CPU; this leaves room, and the upload its own time.
CHECK_SECONDS = 60


def format_of(content_type: str) -> Format:
    """The format of the sniffed `content_type`, or PermanentError naming what is taken."""
    format_ = FORMATS_BY_TYPE.get(content_type)
    if format_ is None:
        names = ", ".join(known.name for known in FORMATS)
        raise PermanentError(f"portdocs does not take {content_type} files; it takes {names}")
    return format_


def converted_name(file_name: str, handling: Handling) -> str:
    """`fax.tif` sent as a PDF is named `fax.pdf`; a name without the old extension keeps all of
    itself (`Invoice v1.2` becomes `Invoice v1.2.pdf`)."""
    if handling is Handling.AS_IS:
        return file_name
    stem, dot, extension = file_name.rpartition(".")
    if dot and stem and extension.lower() in CONVERTED_EXTENSIONS:
        file_name = stem
    return file_name + CONVERTED[handling][1]

"""The one writer of the small PDFs the tests, the soak and the benchmarks make: numbered objects,
then a correct xref table and trailer, so that pypdf (and so the uploader's pre-flight check) and
any viewer open them. Hand-written because no library in the lock writes a PDF object by object
(a test can then break exactly one part of it)."""

from __future__ import annotations

HEADER = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"


def assemble(
    objects: list[bytes], header: bytes = HEADER, tail: bytes = b"", startxref: int | None = None
) -> bytes:
    """`objects` as objects 1, 2, …; `startxref` other than the xref's offset makes a broken file."""
    out = bytearray(header)
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % (xref if startxref is None else startxref)
    return bytes(out) + tail

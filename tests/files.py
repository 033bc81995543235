"""Files for the tests, made here from their parts so each says what it is: valid documents of
every format, and hostile ones, each with the outcome docs/formats.md documents for it."""

from __future__ import annotations

import functools
import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw
from pypdf import PdfWriter

from portdocs_sandbox.pdf_objects import assemble

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
FAXED_LOA = (SAMPLES / "faxed-loa.tif").read_bytes()
PHONE_PHOTO = (SAMPLES / "loa-phone-photo.heic").read_bytes()


def pdf(*page_texts: str, tail: bytes = b"") -> bytes:
    """A PDF with one page per text, written object by object with a correct xref table."""
    return pdf_of_streams(
        *(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode() for text in page_texts), tail=tail
    )


def pdf_of_streams(*streams: bytes, tail: bytes = b"") -> bytes:
    """A PDF with one page per content stream (its bytes as given: a test file's payload)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + 2 * n} 0 R" for n in range(len(streams)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(streams)} >>".encode())
    for n, stream in enumerate(streams):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * n} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    return _assemble(objects, tail)


def _assemble(objects: list[bytes], tail: bytes = b"", startxref: int | None = None) -> bytes:
    return assemble(objects, tail=tail, startxref=startxref)


def image(format_: str, size: tuple[int, int] = (120, 80), mode: str = "RGB", **options: object) -> bytes:
    picture = Image.new(mode, size, "white")
    ImageDraw.Draw(picture).text((10, 10), "portdocs", fill="black")
    out = io.BytesIO()
    picture.save(out, format_, **options)
    return out.getvalue()


PNG = image("PNG")
JPEG = image("JPEG")
TIFF = image("TIFF", compression="tiff_lzw")


def tiff_pages(count: int, size: tuple[int, int] = (64, 64)) -> bytes:
    pages = [Image.new("1", size, 1) for _ in range(count)]
    out = io.BytesIO()
    pages[0].save(out, "TIFF", compression="group4", save_all=True, append_images=pages[1:])
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares an enormous image (a decompression bomb's shape)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\x00" * 1024, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


def tiff_declaring(width: int, height: int) -> bytes:
    """A little-endian TIFF whose one IFD declares an enormous uncompressed image."""
    entries = [
        (256, 4, 1, width),  # ImageWidth
        (257, 4, 1, height),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 1),  # Photometric: black is zero
        (273, 4, 1, 8),  # StripOffsets
        (277, 3, 1, 1),  # SamplesPerPixel
        (278, 4, 1, height),  # RowsPerStrip
        (279, 4, 1, min(width * height, 2**32 - 1)),  # StripByteCounts
    ]
    ifd_offset = 16
    body = b"II*\x00" + struct.pack("<I", ifd_offset) + bytes(8)
    body += struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        body += struct.pack("<HHII", tag, kind, count, value)
    return body + struct.pack("<I", 0)


def tiff_with_looping_pages() -> bytes:
    """A TIFF whose second page's 'next page' offset points back at the first."""
    data = bytearray(tiff_pages(2))
    first = struct.unpack_from("<I", data, 4)[0]
    count = struct.unpack_from("<H", data, first)[0]
    second = struct.unpack_from("<I", data, first + 2 + 12 * count)[0]
    count2 = struct.unpack_from("<H", data, second)[0]
    struct.pack_into("<I", data, second + 2 + 12 * count2, first)
    return bytes(data)


def png_with_broken_checksum() -> bytes:
    data = bytearray(PNG)
    at = data.index(b"IDAT") - 4
    length = struct.unpack_from(">I", data, at)[0]
    data[at + 8 + length] ^= 0xFF  # the first byte of the IDAT chunk's CRC
    return bytes(data)


def zip_file() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("loa.pdf", pdf("inside a zip"))
    return out.getvalue()


def encrypted_pdf(user_password: str) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_with_circular_page_tree() -> bytes:
    return _assemble(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>",
        ]
    )


def pdf_with_flate_bomb() -> bytes:
    """One page whose content stream is 15 KB compressed and 1.5 GB decompressed."""
    compressor = zlib.compressobj(9)
    bomb = b"".join(compressor.compress(bytes(1024 * 1024)) for _ in range(1500)) + compressor.flush()
    return _assemble(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(bomb) + bomb + b"\nendstream",
        ]
    )


def heic_without_image() -> bytes:
    """An ISO-BMFF 'heic' file type box and an empty metadata box: the shape, no picture."""
    ftyp = struct.pack(">I", 24) + b"ftypheic" + struct.pack(">I", 0) + b"mif1heic"
    meta = struct.pack(">I", 12) + b"meta" + bytes(4)
    return ftyp + meta


@dataclass(frozen=True)
class Hostile:
    name: str
    file_name: str
    body: bytes
    # Words the rejection reason must contain (docs/formats.md lists the same); None: the file is
    # taken, as a viewer would read it (`pages` of it).
    reason: str | None
    pages: int | None = None


LOA_PDF = pdf("Letter of authorization")


@functools.cache
def hostile_files() -> tuple[Hostile, ...]:
    """At least 25 files built to be refused, and why each is."""
    truncated = LOA_PDF[: len(LOA_PDF) // 2]
    return (
        Hostile("empty file", "loa.pdf", b"", "empty"),
        Hostile("truncated PDF", "loa.pdf", truncated, "does not end as a PDF ends"),
        Hostile("PDF with a password to open", "loa.pdf", encrypted_pdf("secret"), "password"),
        Hostile("PDF encrypted without an open password", "loa.pdf", encrypted_pdf(""), "encrypted"),
        Hostile("PDF with zero pages", "loa.pdf", pdf(), "no pages"),
        Hostile(
            "PDF whose xref points outside the file",
            "loa.pdf",
            _assemble([b"<< /Type /Catalog >>"], startxref=10**9),
            "could not be read",
        ),
        Hostile(
            "PDF with a circular page tree", "loa.pdf", pdf_with_circular_page_tree(), "could not be read"
        ),
        Hostile(
            "PDF whose content stream is a decompression bomb",
            "loa.pdf",
            pdf_with_flate_bomb(),
            "could not be read",
        ),
        Hostile("PDF header and nothing else", "loa.pdf", b"%PDF-1.7\n%%EOF\n", "could not be read"),
        Hostile(
            "polyglot PDF with a ZIP appended", "loa.pdf", LOA_PDF + zip_file(), "does not end as a PDF ends"
        ),
        Hostile("ZIP named .pdf", "loa.pdf", zip_file(), "application/zip"),
        Hostile("JPEG cut in half", "photo.jpg", JPEG[: len(JPEG) // 2], "could not be read"),
        Hostile(
            "JPEG header only",
            "photo.jpg",
            b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64),
            "could not be read",
        ),
        Hostile("PNG bomb", "csr.png", png_declaring(100_000, 100_000), "megapixels"),
        Hostile("PNG with a broken checksum", "csr.png", png_with_broken_checksum(), "could not be read"),
        Hostile(
            "PNG header only",
            "csr.png",
            b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64),
            "could not be read",
        ),
        Hostile("TIFF bomb", "fax.tif", tiff_declaring(200_000, 200_000), "megapixels"),
        Hostile("TIFF with 500 pages", "fax.tif", tiff_pages(500), "500 pages"),
        Hostile("TIFF whose pages loop", "fax.tif", tiff_with_looping_pages(), None, pages=2),
        Hostile(
            "TIFF whose data lies outside the file", "fax.tif", tiff_declaring(100, 100), "could not be read"
        ),
        Hostile("HEIC with no image", "photo.heic", heic_without_image(), "could not be read"),
        Hostile("HEIC cut short", "photo.heic", PHONE_PHOTO[: len(PHONE_PHOTO) // 3], "could not be read"),
        Hostile("GIF named .jpg", "photo.jpg", image("GIF"), "image/gif"),
        Hostile("WebP photo", "photo.webp", image("WEBP"), "image/webp"),
        Hostile(
            "HTML named .pdf",
            "loa.pdf",
            b"<!doctype html><html><body>LOA</body></html>",
            "could not be recognised",
        ),
        Hostile(
            "executable named .pdf", "loa.pdf", b"\x7fELF\x02\x01\x01" + bytes(64), "application/x-executable"
        ),
        Hostile(
            "text file named .pdf", "loa.pdf", b"LETTER OF AUTHORIZATION\n" * 10, "could not be recognised"
        ),
    )

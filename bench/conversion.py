"""Time and peak memory of checking and converting a TIFF for a porting order: portdocs' worker
(portdocs/file_check_worker.py: pages wrapped by img2pdf, one process per file) against a naive
in-process conversion (Pillow loads every page and saves them as a PDF, re-encoding them), measured
in the same run on the same files.

Each variant runs in a fresh process that reports its own peak RSS (Linux's VmHWM, read at its
end: rusage's maxrss would start at this process's peak, which holds the files). Files:
- a 20 MiB scan: 11 pages of A4 at 300 dpi, 8-bit grey, LZW (a band of noise on each page);
- a 100-page fax: CCITT group 4, fine mode, the most pages portdocs converts;
- a colour scan: 3 pages of A4 at 300 dpi, JPEG-coded (decoded and stored losslessly: the worst
  case for time and size);
- the sample HEIC photo, converted to JPEG.

    make bench            # or: .venv/bin/python bench/conversion.py
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
A4_300_DPI = (2480, 3508)
FAX_FINE = (1728, 2292)
NAIVE = """
import sys
from PIL import Image
import pi_heif
pi_heif.register_heif_opener()
Image.MAX_IMAGE_PIXELS = None
with Image.open(sys.argv[1]) as image:
    pages = []
    for number in range(getattr(image, "n_frames", 1)):
        image.seek(number)
        pages.append(image.convert("RGB") if image.mode not in ("1", "L", "RGB") else image.copy())
kind = "PDF" if sys.argv[3] == "pdf" else "JPEG"
pages[0].save(sys.argv[2], kind, save_all=kind == "PDF", append_images=pages[1:])
"""


def scan_tiff(target_bytes: int = 20 * 1024 * 1024) -> bytes:
    """Pages with a band of noise (a photo on the page, say) until the file is just under 20 MiB."""
    rng = random.Random(7)
    pages: list[Image.Image] = []
    estimate = 0
    while True:
        page = Image.new("L", A4_300_DPI, 255)
        page.paste(Image.frombytes("L", (A4_300_DPI[0], 500), rng.randbytes(A4_300_DPI[0] * 500)), (0, 1200))
        ImageDraw.Draw(page).text((300, 300), f"page {len(pages) + 1}", fill=0)
        alone = len(_tiff([page], "tiff_lzw"))
        if estimate + alone > target_bytes * 0.97:
            break
        pages.append(page)
        estimate += alone
    return _tiff(pages, "tiff_lzw")


def colour_scan_tiff() -> bytes:
    """Three A4 pages at 300 dpi in colour, JPEG-coded: a phone or copier scan, decoded to convert."""
    rng = random.Random(11)
    pages = [
        Image.frombytes("RGB", A4_300_DPI, rng.randbytes(A4_300_DPI[0] * A4_300_DPI[1] * 3)) for _ in range(3)
    ]
    out = io.BytesIO()
    pages[0].save(out, "TIFF", compression="jpeg", quality=60, save_all=True, append_images=pages[1:])
    return out.getvalue()


def fax_tiff(count: int = 100) -> bytes:
    pages = []
    for number in range(count):
        page = Image.new("1", FAX_FINE, 1)
        draw = ImageDraw.Draw(page)
        for line in range(40):
            draw.text((120, 100 + 50 * line), f"page {number + 1} line {line + 1}: +1 312 555 0100", fill=0)
        pages.append(page)
    return _tiff(pages, "group4")


def _tiff(pages: list[Image.Image], compression: str) -> bytes:
    out = io.BytesIO()
    pages[0].save(out, "TIFF", compression=compression, save_all=True, append_images=pages[1:])
    return out.getvalue()


# Runs a module or code as `python -m`/`-c` would, then writes the process's peak RSS to stderr.
MEASURED = """
import atexit, runpy, sys
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write("peak-kib " + line.split()[1] + chr(10))
atexit.register(peak)
kind, what, *sys.argv[1:] = sys.argv[1:]
if kind == "-m":
    runpy.run_module(what, run_name="__main__")
else:
    exec(compile(what, "<naive>", "exec"), {"__name__": "__main__"})
"""


def measure(command: list[str]) -> tuple[float, float, bytes]:
    """Seconds and peak MiB of running `command` (["-m", module, *args] or ["-c", code, *args])."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, *command], capture_output=True, env=_env(), check=False
    )
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr.decode()
    kib = next(line.split()[1] for line in done.stderr.decode().splitlines() if line.startswith("peak-kib"))
    return seconds, int(kib) / 1024, done.stdout


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}


def portdocs(path: Path, content_type: str, handling: str) -> tuple[float, float, int]:
    output = path.with_suffix(".out")
    request = {
        "path": str(path),
        "output": str(output),
        "content_type": content_type,
        "handling": handling,
        "memory_bytes": 768 * 1024 * 1024,
    }
    seconds, mib, answer = measure(["-m", "portdocs.file_check_worker", json.dumps(request)])
    assert "refused" not in json.loads(answer), answer
    return seconds, mib, output.stat().st_size


def naive(path: Path, kind: str) -> tuple[float, float, int]:
    output = path.with_suffix(".naive")
    seconds, mib, _ = measure(["-c", NAIVE, str(path), str(output), kind])
    return seconds, mib, output.stat().st_size


def _figures(measured: tuple[float, float, int]) -> str:
    seconds, mib, out = measured
    return f"{seconds:6.2f} s  peak {mib:6.1f} MiB  out {out / 2**20:6.2f} MiB"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        cases = [
            ("20 MiB scan, LZW grey", Path(folder, "scan.tif"), scan_tiff(), "image/tiff", "to PDF", "pdf"),
            ("100-page fax, CCITT G4", Path(folder, "fax.tif"), fax_tiff(), "image/tiff", "to PDF", "pdf"),
            (
                "colour scan, JPEG-coded",
                Path(folder, "colour.tif"),
                colour_scan_tiff(),
                "image/tiff",
                "to PDF",
                "pdf",
            ),
            ("HEIC photo (sample)", Path(folder, "photo.heic"), None, "image/heic", "to JPEG", "jpeg"),
        ]
        print("check and conversion (a worker process per file) vs naive (Pillow, in-process, re-encoding)")
        for name, path, body, content_type, handling, kind in cases:
            path.write_bytes(body if body is not None else (SAMPLES / "loa-phone-photo.heic").read_bytes())
            pages = getattr(Image.open(path), "n_frames", 1) if content_type == "image/tiff" else 1
            ours = portdocs(path, content_type, handling)
            theirs = naive(path, kind)
            print(
                f"{name}: {path.stat().st_size / 2**20:.1f} MiB, {pages} pages\n"
                f"  portdocs: {_figures(ours)}\n"
                f"  naive:    {_figures(theirs)}\n"
                f"  ratio (portdocs / naive): time {ours[0] / theirs[0]:.2f}x, "
                f"peak memory {ours[1] / theirs[1]:.2f}x"
            )


if __name__ == "__main__":
    main()

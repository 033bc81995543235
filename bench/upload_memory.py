"""Peak memory of uploading a document: portdocs' streaming path against a naive `requests`
`files=` upload, measured in the same run, for each of Telnyx's two upload services.

Every variant reads the document from S3 (moto server, its own process) and posts it to the
Telnyx emulator (its own process): a 200 MiB document to the files service through a fresh
presigned form (the draft flow), a 19 MiB one to the documents service (porting orders; it takes
at most 20 MB). Each runs in a fresh Python process and reads its own peak RSS (Linux's VmHWM:
ru_maxrss would start at the parent's peak, which a child's smaller peak cannot show through).

    make bench            # or: .venv/bin/python bench/upload_memory.py --mib 200
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

import boto3

BUCKET = "bench-intake"
KEY = "prq/sub/loa/big document.pdf"
DOCUMENTS_KEY = "porting-orders/po/loa/big document.pdf"
DOCUMENTS_MIB = 19  # the documents service takes at most 20 MB
ENV = {
    **os.environ,
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def variant(name: str, endpoint: str, api_url: str, files_host: str, size: int) -> None:
    """Runs in a child process: one upload, then prints its own peak RSS."""
    import requests

    from portdocs.documents import SourceObject
    from portdocs.intake import IntakeStore
    from portdocs.retrying import Deadline
    from portdocs.telnyx_credentials import StaticCredentials, TelnyxCredentials
    from portdocs.telnyx_http import TelnyxHttp
    from portdocs.telnyx_legacy import DraftPortRequestsApi
    from portdocs.telnyx_v2 import PortingOrdersApi
    from portdocs_sandbox.telnyx_emulator import DEFAULT_API_KEY

    s3 = boto3.client("s3", endpoint_url=endpoint)
    credentials = TelnyxCredentials(
        api_user="portdocs@example.com", api_token="emulator-token", api_key=DEFAULT_API_KEY
    )
    http = TelnyxHttp(api_url, StaticCredentials(credentials))
    telnyx, documents = DraftPortRequestsApi(http, (files_host,)), PortingOrdersApi(http)
    deadline = Deadline(at=time.monotonic() + 600)
    if name.endswith("documents"):
        baseline = peak_rss_kib()
        started = time.perf_counter()
        if name.startswith("streaming"):
            with IntakeStore(s3).open(SourceObject(BUCKET, DOCUMENTS_KEY)) as body:
                location = documents.upload_document(
                    "big document.pdf", body, size, "application/pdf", deadline
                )
        else:
            data = s3.get_object(Bucket=BUCKET, Key=DOCUMENTS_KEY)["Body"].read()
            answer = requests.post(
                f"{api_url}/v2/documents",
                files={"file": ("big document.pdf", data, "application/pdf")},
                headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
                timeout=300,
            )
            answer.raise_for_status()
            location = answer.json()["data"]["id"]
        report(name, baseline, started, location)
        return
    form = telnyx.request_upload_form("application/pdf", deadline)
    baseline = peak_rss_kib()
    started = time.perf_counter()
    if name == "streaming":
        intake = IntakeStore(s3)
        with intake.open(SourceObject(BUCKET, KEY)) as body:
            location = telnyx.upload(form, "big document.pdf", body, size, "application/pdf", deadline)
    else:
        data = s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
        answer = requests.post(
            form.url,
            data=form.fields,
            files={form.file_field: ("big document.pdf", data, "application/pdf")},
            timeout=300,
        )
        answer.raise_for_status()
        location = answer.headers["Location"]
    report(name, baseline, started, location)


def peak_rss_kib() -> int:
    """This process's peak resident set since it started (its exec), in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: the best there is


def report(name: str, baseline: int, started: float, location: str) -> None:
    elapsed = time.perf_counter() - started
    peak = peak_rss_kib()
    print(
        json.dumps(
            {
                "variant": name,
                "peak_kib": peak,
                "baseline_kib": baseline,
                "seconds": elapsed,
                "location": location,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--bytes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--api-url", help=argparse.SUPPRESS)
    parser.add_argument("--files-host", help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = args.mib * 1024 * 1024
    if args.variant:
        variant(args.variant, args.endpoint, args.api_url, args.files_host, args.bytes)
        return

    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    emulator = subprocess.Popen(
        [sys.executable, "-m", "portdocs_sandbox.telnyx_emulator", "--max-upload-bytes", str(size + 1024)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert emulator.stdout is not None  # stdout=PIPE
        urls = json.loads(emulator.stdout.readline())
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        for _ in range(50):
            try:
                s3.create_bucket(Bucket=BUCKET)
                break
            except Exception:  # moto server still starting
                time.sleep(0.2)
        put_document(s3, KEY, size)
        documents_size = DOCUMENTS_MIB * 1024 * 1024
        put_document(s3, DOCUMENTS_KEY, documents_size)

        results = {}
        sizes = {"naive": size, "streaming": size, "naive documents": documents_size}
        sizes["streaming documents"] = documents_size
        for name, variant_size in sizes.items():
            output = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--bytes",
                    str(variant_size),
                    "--variant",
                    name,
                    "--endpoint",
                    endpoint,
                    "--api-url",
                    urls["api_url"],
                    "--files-host",
                    urls["files_host"],
                ],
                env=ENV,
                capture_output=True,
                text=True,
                check=False,
            )
            if output.returncode != 0:
                sys.exit(f"the {name} variant failed:\n{output.stderr}")
            results[name] = json.loads(output.stdout.strip().splitlines()[-1])
    finally:
        for process in (moto, emulator):
            process.terminate()
            process.wait()

    print(f"Upload of a {args.mib} MiB document from S3 (moto server) to the files service (emulator)")
    compare(results["naive"], results["streaming"], "")
    print(
        f"Upload of a {DOCUMENTS_MIB} MiB document from S3 (moto server) to the documents service (emulator)"
    )
    compare(results["naive documents"], results["streaming documents"], " documents")


def put_document(s3: object, key: str, size: int) -> None:
    """A PDF of `size` bytes that opens (the emulator's documents service reads what it takes): one
    page whose content stream is random bytes, written in pieces, never held whole."""
    head = b"%PDF-1.7\n"
    objects = [
        b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
        b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n",
        b"3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>\nendobj\n",
    ]
    offsets = [len(head) + sum(len(o) for o in objects[:n]) for n in range(len(objects) + 1)]

    def tail(stream_length: int) -> tuple[bytes, bytes]:
        opening = b"4 0 obj\n<< /Length %d >>\nstream\n" % stream_length
        xref_at = offsets[3] + len(opening) + stream_length + len(b"\nendstream\nendobj\n")
        entries = b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
        closing = (
            b"\nendstream\nendobj\nxref\n0 5\n0000000000 65535 f \n"
            + entries
            + b"trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref_at
        )
        return opening, closing

    opening, closing = tail(size)
    stream_length = size - offsets[3] - len(opening) - len(closing)
    opening, closing = tail(stream_length)
    with tempfile.TemporaryFile() as document:
        document.write(head + b"".join(objects) + opening)
        chunk = os.urandom(1024 * 1024)
        written = 0
        while written < stream_length:
            piece = chunk[: stream_length - written]
            document.write(piece)
            written += len(piece)
        document.write(closing)
        document.seek(0)
        s3.upload_fileobj(document, BUCKET, key)  # type: ignore[attr-defined]


def compare(naive: dict[str, float], streaming: dict[str, float], suffix: str) -> None:
    print(f"{'variant':<22}{'peak RSS MiB':>14}{'RSS growth MiB':>16}{'seconds':>10}")
    for name, result in ((f"naive{suffix}", naive), (f"streaming{suffix}", streaming)):
        growth = (result["peak_kib"] - result["baseline_kib"]) / 1024
        print(f"{name:<22}{result['peak_kib'] / 1024:>14.1f}{growth:>16.1f}{result['seconds']:>10.2f}")
    print(f"peak RSS ratio naive/streaming: {naive['peak_kib'] / streaming['peak_kib']:.1f}x")
    naive_growth = (naive["peak_kib"] - naive["baseline_kib"]) / 1024
    streaming_growth = (streaming["peak_kib"] - streaming["baseline_kib"]) / 1024
    # Below 1 MiB the growth is noise: say it is flat rather than print a meaningless ratio.
    verdict = (
        f"{naive_growth / streaming_growth:.1f}x"
        if streaming_growth >= 1
        else f">{naive_growth:.0f}x (streaming stayed flat)"
    )
    print(f"RSS growth during the upload, naive/streaming: {verdict}")


if __name__ == "__main__":
    main()

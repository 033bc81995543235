"""Intake bucket adapter: describe, read and tag the objects users drop in."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Required, TypedDict

from botocore.exceptions import BotoCoreError, ClientError

from portdocs import aws
from portdocs.documents import SourceObject

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import HeadObjectOutputTypeDef

TAG_PREFIX = "portdocs:"
STATUS_TAG = "portdocs:status"
REASON_TAG = "portdocs:reason"
CHECK_TAG = "portdocs:check"
S3_MAX_TAGS = 10
# S3 object tags allow letters, digits, white space and + - = . _ : / @, at most 256 characters.
_TAG_FORBIDDEN = re.compile(r"[^A-Za-z0-9 +\-=._:/@]")
TAG_VALUE_MAX = 256
DOWNLOAD_CHUNK_BYTES = 1024 * 1024


class ByteStream(Protocol):
    """What an upload reads a file from: an intake object's body, or any binary file."""

    def read(self, amount: int | None = ..., /) -> bytes: ...


@dataclass(frozen=True)
class ObjectInfo:
    source: SourceObject  # with the version id and ETag the bucket reported
    size: int
    description: str | None


class IntakeStore:
    def __init__(self, s3_client: S3Client) -> None:
        self._s3 = s3_client

    def describe(self, source: SourceObject) -> ObjectInfo:
        """The version (or ETag) `source` names; missing is the document's fault."""
        try:
            head = self._s3.head_object(**_locate(source))
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, f"reading s3://{source.bucket}/{source.key}") from None
        return _info(source, head)

    def current(self, source: SourceObject) -> ObjectInfo | None:
        """The key's current version, or None when the key was deleted (no object, or a delete
        marker on top): what a person means by the key now."""
        latest = SourceObject(bucket=source.bucket, key=source.key)
        try:
            head = self._s3.head_object(**_locate(latest))
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise aws.translate(error, f"reading s3://{source.bucket}/{source.key}") from None
        except BotoCoreError as error:
            raise aws.translate(error, f"reading s3://{source.bucket}/{source.key}") from None
        return _info(latest, head)

    @contextmanager
    def open(self, source: SourceObject) -> Iterator[ByteStream]:
        """The object's body as a stream, pinned to the exact version (or ETag) announced."""
        try:
            body = self._s3.get_object(**_locate(source))["Body"]
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, f"reading s3://{source.bucket}/{source.key}") from None
        try:
            yield body
        finally:
            body.close()

    def download(self, source: SourceObject, path: Path) -> None:
        """The object's body, pinned as `open` pins it, into a local file: checked and sent from
        there (a reader seeks; S3's stream does not)."""
        with self.open(source) as body, path.open("wb") as file:
            try:
                shutil.copyfileobj(body, file, DOWNLOAD_CHUNK_BYTES)
            except (ClientError, BotoCoreError) as error:
                raise aws.translate(error, f"reading s3://{source.bucket}/{source.key}") from None

    def tag(self, source: SourceObject, ours: dict[str, str]) -> None:
        """Replaces every portdocs: tag with `ours` while keeping the object's other tags; does
        nothing when the object already says exactly that."""
        location = _version(source)
        wanted = {key: sanitise_tag_value(value) for key, value in ours.items()}
        try:
            if not source.version_id and source.etag:
                # Tags cannot be pinned by ETag: an object known only by its ETag (an unversioned
                # bucket, moto's events) is tagged only while the key still holds it, never its
                # replacement.
                current = self._s3.head_object(Bucket=source.bucket, Key=source.key).get("ETag", "")
                if current.strip('"') != source.etag.strip('"'):
                    return
            existing = {t["Key"]: t["Value"] for t in self._s3.get_object_tagging(**location)["TagSet"]}
            theirs = {k: v for k, v in existing.items() if not k.startswith(TAG_PREFIX)}
            if {k: v for k, v in existing.items() if k.startswith(TAG_PREFIX)} == wanted:
                return
            # S3 allows ten tags; ours win over the oldest of the user's when the set is full.
            kept = list({**theirs, **wanted}.items())[-S3_MAX_TAGS:]
            self._s3.put_object_tagging(
                **location, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in kept]}
            )
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, f"tagging s3://{source.bucket}/{source.key}") from None


def same_revision(current: SourceObject, wanted: SourceObject) -> bool:
    """Whether the key's current object is the one `wanted` names (by version, else by ETag)."""
    if wanted.version_id:
        return current.version_id == wanted.version_id
    if wanted.etag:
        return (current.etag or "").strip('"') == wanted.etag.strip('"')
    return True


def _info(source: SourceObject, head: HeadObjectOutputTypeDef) -> ObjectInfo:
    resolved = replace(
        source,
        version_id=source.version_id or _real_version(head.get("VersionId")),
        etag=(head.get("ETag") or source.etag or "").strip('"') or None,
    )
    description = (head.get("Metadata") or {}).get("description") or None
    return ObjectInfo(source=resolved, size=int(head["ContentLength"]), description=description)


class _Version(TypedDict, total=False):
    """An object's location as S3's calls take it: the key, at the version named."""

    Bucket: Required[str]
    Key: Required[str]
    VersionId: str


class _Pinned(_Version, total=False):
    # Without versioning, the ETag pins a read to the object announced.
    IfMatch: str


def _locate(source: SourceObject) -> _Pinned:
    location: _Pinned = {"Bucket": source.bucket, "Key": source.key}
    if source.version_id:
        location["VersionId"] = source.version_id
    elif source.etag:
        location["IfMatch"] = f'"{source.etag.strip(chr(34))}"'
    return location


def _version(source: SourceObject) -> _Version:
    """Tag calls take no ETag condition."""
    location: _Version = {"Bucket": source.bucket, "Key": source.key}
    if source.version_id:
        location["VersionId"] = source.version_id
    return location


def _real_version(version_id: str | None) -> str | None:
    # Unversioned buckets report the literal "null" version.
    return None if version_id in (None, "", "null") else version_id


def sanitise_tag_value(value: str) -> str:
    """Maps free text onto S3's tag alphabet so a reason can always be stored as a tag."""
    return _TAG_FORBIDDEN.sub("_", value)[:TAG_VALUE_MAX]

"""The emulator's S3 POST verifier against forms made by botocore's generate_presigned_post."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.config import Config

from portdocs_sandbox.post_policy import PolicyViolation, verify_post

SECRETS = {"AKIATESTVERIFIER0000": "verifier-secret"}


def presigned(expires_in: int = 3600, **extra_conditions) -> dict[str, str]:
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="AKIATESTVERIFIER0000",
        aws_secret_access_key="verifier-secret",
        config=Config(signature_version="s3v4"),
    )
    post = client.generate_presigned_post(
        Bucket="files",
        Key="direct-uploads/u1/${filename}",
        Fields={"content-type": "application/pdf", "acl": "public-read"},
        Conditions=[
            {"content-type": "application/pdf"},
            {"acl": "public-read"},
            ["content-length-range", 1, 1000],
            *extra_conditions.get("conditions", []),
        ],
        ExpiresIn=expires_in,
    )
    return post["fields"]


def test_a_genuine_form_is_accepted_and_the_file_name_substituted():
    verified = verify_post("files", presigned(), "My LOA é.pdf", 500, SECRETS)
    assert verified.key == "direct-uploads/u1/My LOA é.pdf"


def test_tampered_field_breaks_the_policy():
    fields = {**presigned(), "content-type": "text/html"}
    with pytest.raises(PolicyViolation, match="Policy Condition failed") as caught:
        verify_post("files", fields, "a.pdf", 10, SECRETS)
    assert caught.value.status == 403


def test_tampered_policy_breaks_the_signature():
    fields = presigned()
    fields["policy"] = fields["policy"][:-4] + ("AAAA" if not fields["policy"].endswith("AAAA") else "BBBB")
    with pytest.raises(PolicyViolation, match="SignatureDoesNotMatch"):
        verify_post("files", fields, "a.pdf", 10, SECRETS)


def test_wrong_secret_breaks_the_signature():
    with pytest.raises(PolicyViolation, match="SignatureDoesNotMatch"):
        verify_post("files", presigned(), "a.pdf", 10, {"AKIATESTVERIFIER0000": "other"})


def test_unknown_access_key_is_refused():
    with pytest.raises(PolicyViolation, match="InvalidAccessKeyId"):
        verify_post("files", presigned(), "a.pdf", 10, {})


def test_expired_form_is_refused():
    fields = presigned(expires_in=60)
    later = datetime.now(UTC) + timedelta(seconds=61)
    with pytest.raises(PolicyViolation, match="Policy expired"):
        verify_post("files", fields, "a.pdf", 10, SECRETS, now=later)


@pytest.mark.parametrize(("size", "code"), [(1001, "EntityTooLarge"), (0, "EntityTooSmall")])
def test_content_length_range_is_enforced(size, code):
    with pytest.raises(PolicyViolation, match=code):
        verify_post("files", presigned(), "a.pdf", size, SECRETS)


def test_key_must_start_with_the_signed_prefix():
    fields = {**presigned(), "key": "somewhere-else/${filename}"}
    with pytest.raises(PolicyViolation, match=r"starts-with.*\$key"):
        verify_post("files", fields, "a.pdf", 10, SECRETS)


def test_fields_the_policy_does_not_cover_are_refused():
    fields = {**presigned(), "x-amz-meta-owner": "mallory"}
    with pytest.raises(PolicyViolation, match="Extra input fields: x-amz-meta-owner"):
        verify_post("files", fields, "a.pdf", 10, SECRETS)


def test_the_bucket_is_part_of_the_policy():
    with pytest.raises(PolicyViolation, match='"bucket"'):
        verify_post("other-bucket", presigned(), "a.pdf", 10, SECRETS)


def test_missing_signature_is_refused():
    fields = presigned()
    del fields["x-amz-signature"]
    with pytest.raises(PolicyViolation, match="x-amz-signature"):
        verify_post("files", fields, "a.pdf", 10, SECRETS)

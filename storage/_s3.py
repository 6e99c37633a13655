"""S3 plumbing for the mirror: target URLs, a lazily imported boto3 client, error classification.

boto3 is a dependency of socialark, imported lazily (only when a client is built) so the
other storage commands start fast. Errors are sorted into two kinds, because the mirror treats them differently:

* :class:`MirrorConfigError` (a :class:`StorageError`): retrying cannot help (no credentials, bad
  key, access denied, no such bucket). One clear message, the run stops.
* :class:`TransientMirrorError`: the store is unreachable or erroring (connection refused,
  timeouts, 5xx, throttling). Retried with backoff; the file stays unmirrored if it persists.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from storage.errors import StorageError
from storage.names import check_collection

# Bucket names: S3 rules are 3-63 chars of [a-z0-9.-]; R2/B2/IA/MinIO are similar. Underscores
# and upper case are accepted by some legacy stores, so allow them and let the store decide.
_BUCKET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")

_CONFIG_ERROR_CODES = {
    "AccessDenied": "access denied",
    "AllAccessDisabled": "access to the bucket is disabled",
    "ExpiredToken": "the AWS session token has expired",
    "InvalidAccessKeyId": "the AWS access key id is not valid for this endpoint",
    "InvalidBucketName": "the bucket name is not valid",
    "InvalidToken": "the AWS session token is not valid",
    "NoSuchBucket": "the bucket does not exist",
    "SignatureDoesNotMatch": "the AWS secret access key is wrong (signature does not match)",
    "403": "access denied (HTTP 403)",
    "404": "the bucket does not exist (HTTP 404)",
}


class MirrorConfigError(StorageError):
    """The mirror cannot work until the user changes something (credentials, bucket, URL)."""


class TransientMirrorError(Exception):
    """The store is unreachable or failing; worth retrying later."""


@dataclass(frozen=True)
class S3Target:
    """Where WARCs go: ``s3://BUCKET/PREFIX``. Keys are ``PREFIX/<collection>/<warc name>``.

    WARC names are unique across machines (IIPC naming: timestamp, serial, hostname), so keys from
    many crawlers never collide in a shared bucket.
    """

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, url: str) -> S3Target:
        """Parse ``s3://bucket`` or ``s3://bucket/some/prefix``; raise MirrorConfigError otherwise."""
        m = re.fullmatch(r"s3://([^/]*)(?:/(.*))?", url.strip())
        if not m:
            raise MirrorConfigError(
                f"not an S3 URL: {url!r} (expected s3://BUCKET or s3://BUCKET/PREFIX)"
            )
        bucket, prefix = m.group(1), (m.group(2) or "").strip("/")
        if not _BUCKET_RE.match(bucket):
            raise MirrorConfigError(f"not a valid bucket name in {url!r}: {bucket!r}")
        if "//" in prefix:
            raise MirrorConfigError(f"empty path segment in the prefix of {url!r}")
        return cls(bucket, prefix)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key_for(self, collection: str, name: str) -> str:
        """``prefix/collection/name``; never a key outside ``prefix`` (``..``, ``/``)."""
        check_collection(collection)
        if "/" in name or name in ("", ".", "..") or "\\" in name:
            raise StorageError(f"invalid file name {name!r} for a bucket key")
        return "/".join(p for p in (self.prefix, collection, name) if p)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def make_client(
    *,
    endpoint_url: str | None = None,
    region_name: str | None = None,
    profile_name: str | None = None,
    credentials: dict[str, str] | None = None,
    max_pool_connections: int = 16,
    connect_timeout: float = 5.0,
    read_timeout: float = 60.0,
    botocore_retries: int = 2,
) -> Any:
    """Build an S3 client from the standard boto3 chain (env, profile, config files, IMDS).

    ``endpoint_url`` overrides ``AWS_ENDPOINT_URL`` (MinIO, R2, B2, IA). botocore's own retries
    are kept low: the mirror adds its own retry loop with longer backoff around whole operations.
    """
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MirrorConfigError(
            "mirroring needs boto3, a dependency of socialark: reinstall it (pip install boto3)"
        ) from exc
    custom_endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get(
        "AWS_ENDPOINT_URL")
    config = Config(
        max_pool_connections=max_pool_connections,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": botocore_retries + 1},
        # Custom endpoints (MinIO, R2, B2, IA, moto) want path-style URLs: bucket in the path,
        # not in the host name, which needs wildcard DNS there.
        s3={"addressing_style": "path"} if custom_endpoint else None,
    )
    try:
        session = boto3.session.Session(profile_name=profile_name, **(credentials or {}))
        return session.client(
            "s3", endpoint_url=endpoint_url or None, region_name=region_name, config=config
        )
    except BotoCoreError as exc:
        raise MirrorConfigError(f"cannot configure the S3 client: {exc}") from exc
    except ValueError as exc:  # e.g. a malformed endpoint URL
        raise MirrorConfigError(f"cannot configure the S3 client: {exc}") from exc


def classify(exc: BaseException) -> BaseException:
    """Map a botocore exception to MirrorConfigError, TransientMirrorError or itself."""
    from botocore import exceptions as bce

    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError):
        return MirrorConfigError(
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE, or ~/.aws/credentials"
        )
    if isinstance(exc, bce.ProfileNotFound):
        return MirrorConfigError(f"AWS profile not found: {exc}")
    if isinstance(exc, bce.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        op = getattr(exc, "operation_name", "request")
        if code in _CONFIG_ERROR_CODES and not (code == "404" and op != "HeadBucket"):
            return MirrorConfigError(f"S3 {op} failed: {_CONFIG_ERROR_CODES[code]} ({code})")
        if status >= 500 or code in {"SlowDown", "RequestTimeout", "InternalError"}:
            return TransientMirrorError(f"S3 {op} failed: {code or status}")
        return exc
    if isinstance(exc, bce.BotoCoreError | ConnectionError | TimeoutError):
        # EndpointConnectionError, ConnectionClosedError, Read/ConnectTimeoutError, ...
        return TransientMirrorError(f"S3 unreachable: {exc}")
    return exc


def endpoint_problem(value: str) -> str | None:
    """Why ``value`` is not an S3 endpoint URL (http(s)://HOST[:PORT]), or None."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return f"not a URL: {value!r} (expected http(s)://HOST[:PORT])"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"not a URL: {value!r} (expected http(s)://HOST[:PORT])"
    return None

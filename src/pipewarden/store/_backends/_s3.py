"""Objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, ...), through boto3.

Atomicity comes from S3 itself: a PUT or a completed multipart upload appears
whole, an aborted or abandoned one never appears. Exclusive writes use a
conditional PUT (``If-None-Match: *``), which S3 evaluates atomically.
Credentials come from boto3's usual chain (environment, profile, instance
role); they are never logged or stored in the workspace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, cast

from pipewarden.store._backends._interface import (
    Backend,
    BackendError,
    ObjectExists,
    ObjectNotFound,
    ObjectWriter,
    check_key,
)

__all__ = ["PART_SIZE", "S3Backend"]

#: Multipart part size: bounds the memory of a streamed upload (S3's minimum is 5 MiB).
PART_SIZE = 16 << 20


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class _MultipartWriter:
    """Buffers up to one part; uploads a single PUT if the object is small, else a multipart upload."""

    def __init__(self, backend: S3Backend, key: str) -> None:
        self._b = backend
        self._key = key
        self._buf = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def write(self, data: bytes) -> int:
        self._buf += data
        while len(self._buf) >= PART_SIZE:
            self._send(bytes(self._buf[:PART_SIZE]))
            del self._buf[:PART_SIZE]
        return len(data)

    def _send(self, part: bytes) -> None:
        client = self._b.client
        if self._upload_id is None:
            self._upload_id = client.create_multipart_upload(Bucket=self._b.bucket, Key=self._key)["UploadId"]
        number = len(self._parts) + 1
        etag = client.upload_part(
            Bucket=self._b.bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=part
        )["ETag"]
        self._parts.append({"ETag": etag, "PartNumber": number})

    def commit(self) -> None:
        client = self._b.client
        if self._upload_id is None:
            client.put_object(Bucket=self._b.bucket, Key=self._key, Body=bytes(self._buf))
            return
        if self._buf:
            self._send(bytes(self._buf))
            self._buf.clear()
        client.complete_multipart_upload(
            Bucket=self._b.bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )

    def abort(self) -> None:
        if self._upload_id is not None:
            with contextlib.suppress(Exception):
                self._b.client.abort_multipart_upload(
                    Bucket=self._b.bucket, Key=self._key, UploadId=self._upload_id
                )


class _Body:
    """A response body whose read errors (a dropped connection, a timeout) are the backend's errors."""

    def __init__(self, body: Any, backend: S3Backend, key: str) -> None:
        self._body = body
        self._backend = backend
        self._key = key

    def read(self, n: int = -1) -> bytes:
        try:
            return bytes(self._body.read(n if n >= 0 else None))
        except self._backend._errors as exc:
            raise self._backend._fail(self._key, exc, "read") from exc


class S3Backend(Backend):
    """A bucket and an optional prefix; `endpoint_url` points at any S3-compatible service."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        if not bucket:
            raise BackendError("s3 backend: no bucket configured")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.location = f"s3://{bucket}/{self.prefix}"
        try:
            import boto3
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            raise BackendError("the s3 backend needs boto3: pip install 'pipewarden[s3]'") from None
        self._errors: tuple[type[Exception], ...] = (BotoCoreError, ClientError)
        if client is None:
            config = Config(retries={"max_attempts": 5, "mode": "standard"})
            client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)
        self.client = client

    def _k(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _fail(self, key: str, exc: Exception, verb: str) -> BackendError:
        code = _code(exc)
        if code in {"NoSuchKey", "404", "NotFound"}:
            return ObjectNotFound(f"{self.location}: {key} does not exist")
        if code in {"PreconditionFailed", "412", "ConditionalRequestConflict"}:
            return ObjectExists(f"{self.location}: {key} exists already")
        return BackendError(f"{self.location}: cannot {verb} {key}: {code or exc}")

    @contextmanager
    def writer(self, key: str) -> Iterator[ObjectWriter]:
        w = _MultipartWriter(self, self._k(key))
        try:
            yield w
            w.commit()
        except self._errors as exc:
            w.abort()
            raise self._fail(key, exc, "write") from exc
        except BaseException:
            w.abort()
            raise

    def put(self, key: str, data: bytes, *, exclusive: bool = False) -> None:
        extra = {"IfNoneMatch": "*"} if exclusive else {}
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=data, **extra)
        except self._errors as exc:
            raise self._fail(key, exc, "write") from exc

    def get(self, key: str) -> bytes:
        with self.open(key) as body:
            return body.read()

    @contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._k(key))["Body"]
        except self._errors as exc:
            raise self._fail(key, exc, "read") from exc
        try:
            yield cast(BinaryIO, _Body(body, self, key))
        finally:
            body.close()

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._k(key))
        except self._errors as exc:
            failure = self._fail(key, exc, "read")
            if isinstance(failure, ObjectNotFound):
                return False
            raise failure from exc
        return True

    def iter_keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix) :]
        except self._errors as exc:
            raise self._fail(prefix, exc, "list") from exc

    def move(self, source: str, target: str) -> None:
        try:
            # The managed copy switches to a multipart copy above 5 GB, where CopyObject stops.
            self.client.copy({"Bucket": self.bucket, "Key": self._k(source)}, self.bucket, self._k(target))
            self.client.delete_object(Bucket=self.bucket, Key=self._k(source))
        except self._errors as exc:
            raise self._fail(source, exc, "move") from exc

    def check_conditional_writes(self) -> None:
        """Refuse a service that ignores ``If-None-Match: *``: versions could then be overwritten.

        Writes one probe object twice; the second write must be refused.
        """
        import secrets

        probe = f"probes/conditional-write-{secrets.token_hex(8)}"
        self.put(probe, b"1", exclusive=True)
        try:
            self.put(probe, b"2", exclusive=True)
        except ObjectExists:
            return
        finally:
            self.delete(probe)
        raise BackendError(
            f"{self.location}: the service ignored a conditional write (If-None-Match: *), so it cannot keep "
            "versions immutable; use a service that supports conditional writes"
        )

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._k(key))
        except self._errors as exc:
            raise self._fail(key, exc, "delete") from exc

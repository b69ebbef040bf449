"""Files through a table's FileIO: copies, listings and deletes (local paths and object stores alike).

A copy goes the cheapest way the two sides allow, and says which (``Copied.way``):

- ``server-side``: both on S3 behind one endpoint with the same credentials — the store copies the
  object itself (``CopyObject``, or ``UploadPartCopy`` parts for large objects); no byte passes
  through this process. The source's full-object checksum algorithm is asked for on the copy, so the
  copy carries a checksum level 3 can compare without reading (``stored_checksum``). Both on GCS
  through PyArrow file systems of the same settings, Arrow's copy is the store's ``rewriteTo``.
- ``kernel``: local disk to local disk, ``copy_file_range``.
- ``user-space``: local disk to local disk where the kernel refuses ``copy_file_range`` (across some
  file systems, old kernels): read and written through a buffer here.
- ``arrow``: between other PyArrow file systems, streamed in Arrow's C++ (S3 to S3 with other
  credentials or endpoints, local to S3, ...).
- ``stream``: any other FileIO, streamed here in chunks.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from pyiceberg.io import FileIO

from icebridge.errors import DestinationWriteError, IceBridgeError, StorageTransientError, TerminalError

COPY_CHUNK_BYTES = 8 * 1024 * 1024
# Bytes asked of one copy_file_range call (the kernel may copy fewer; the loop goes on until end of file).
_RANGE_BYTES = 1 << 30
# copy_file_range is refused across some file systems and on old kernels: copy through user space then.
_NO_RANGE_COPY = frozenset({errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOTSUP})


# Objects up to this size are copied server-side with one CopyObject (S3 allows up to 5 GiB); larger
# ones in parts of S3_COPY_PART_BYTES (at least 5 MiB but the last, at most 10,000 parts), several at once.
S3_SINGLE_COPY_MAX_BYTES = 1 << 30
S3_COPY_PART_BYTES = 256 * 1024 * 1024
S3_COPY_PART_WORKERS = 8
S3_SCHEMES = frozenset({"s3", "s3a", "s3n"})
# Checksums S3 can keep for a whole object (a multipart object keeps a CRC as one full-object value).
FULL_OBJECT_CRCS = ("CRC64NVME", "CRC32C", "CRC32")
S3_CHECKSUMS = (*FULL_OBJECT_CRCS, "SHA256", "SHA1")

SERVER_SIDE = "server-side"
KERNEL = "kernel"
USER_SPACE = "user-space"
ARROW = "arrow"
STREAM = "stream"
WAYS = (SERVER_SIDE, KERNEL, USER_SPACE, ARROW, STREAM)


@dataclass(frozen=True)
class Copied:
    """One file copied: its bytes and the way they went (one of ``WAYS``)."""

    bytes: int
    way: str


@dataclass(frozen=True)
class StoredChecksum:
    """A store's own checksum of a whole object (e.g. S3 ``x-amz-checksum-crc32``), and the object's size."""

    algorithm: str  # e.g. "s3:CRC32"
    value: str
    size: int


@dataclass(frozen=True)
class StoredFile:
    path: str
    size: int


def storage_error(exc: BaseException, what: str) -> IceBridgeError:
    """Our error for a storage failure: missing or forbidden is terminal, anything else may pass on retry."""
    if isinstance(exc, IceBridgeError):
        return exc
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError | NotADirectoryError):
        return TerminalError(f"{what}: {exc}")
    if isinstance(exc, OSError | ConnectionError | TimeoutError):
        return StorageTransientError(f"{what}: {exc}")
    return TerminalError(f"{what}: {type(exc).__name__}: {exc}")


def _native(io: FileIO, location: str) -> tuple[Any, str] | None:
    """The PyArrow filesystem and path behind a location, when ``io`` is PyIceberg's PyArrowFileIO."""
    from pyiceberg.io.pyarrow import PyArrowFileIO

    if not isinstance(io, PyArrowFileIO):
        return None
    scheme, netloc, path = PyArrowFileIO.parse_location(location, io.properties)
    return io.fs_by_scheme(scheme, netloc), path


def copy_file(source_io: FileIO, source_path: str, dest_io: FileIO, dest_path: str, expected_size: int) -> int:
    """Copy one file (see :func:`transfer`); returns the bytes written."""
    return transfer(source_io, source_path, dest_io, dest_path, expected_size).bytes


def transfer(source_io: FileIO, source_path: str, dest_io: FileIO, dest_path: str, expected_size: int) -> Copied:
    """Copy one file the cheapest way the two sides allow (never whole in memory), and say which way it went.

    S3 to S3 behind one endpoint with the same credentials, the store copies the object itself
    (``server-side``). Local to local, the kernel copies (``copy_file_range``: no user-space buffer,
    and a reflink on file systems that share blocks), as ``cp`` does. Between other PyArrow
    filesystems (S3, GCS, ...) Arrow's own copy streams the bytes in C++ without passing them through
    Python; any other FileIO is streamed here. The destination is overwritten, so a retried copy
    replaces a partial one instead of duplicating it.

    Raises:
        TerminalError: the source is missing, forbidden, or not as long as ``expected_size``.
        StorageTransientError: the store answered with something a retry may get past.
    """
    import pyarrow.fs as pafs

    access = shared_s3_access(source_io, source_path, dest_io, dest_path)
    if access is not None:
        dest_io.new_output(dest_path)  # a ledger bound to dest_io records (and guards) the target; nothing is written
        return Copied(_s3_copy(access, source_path, dest_path, expected_size), SERVER_SIDE)
    source_native, dest_native = _native(source_io, source_path), _native(dest_io, dest_path)
    written = 0
    way = STREAM
    try:
        if (
            source_native
            and dest_native
            and isinstance(source_native[0], pafs.LocalFileSystem)
            and isinstance(dest_native[0], pafs.LocalFileSystem)
        ):
            written, way = _copy_local(source_native[1], dest_native[1])
        elif source_native and dest_native:
            way = SERVER_SIDE if _same_gcs(source_native[0], dest_native[0]) else ARROW
            dest_native[0].create_dir(posixpath.dirname(dest_native[1]), recursive=True)
            pafs.copy_files(
                source_native[1],
                dest_native[1],
                source_native[0],
                dest_native[0],
                chunk_size=COPY_CHUNK_BYTES,
                use_threads=False,
            )
            written = dest_native[0].get_file_info(dest_native[1]).size or 0
        else:
            with source_io.new_input(source_path).open(seekable=False) as reader:
                with dest_io.new_output(dest_path).create(overwrite=True) as writer:
                    while chunk := reader.read(COPY_CHUNK_BYTES):
                        writer.write(chunk)
                        written += len(chunk)
    except Exception as exc:
        raise storage_error(exc, f"copying {source_path} to {dest_path}") from exc
    if written != expected_size:
        _quiet_delete(dest_io, dest_path)
        raise TerminalError(
            f"{source_path}: read {written} bytes but the manifest says {expected_size}; the source file is damaged"
        )
    return Copied(written, way)


def _same_gcs(source: Any, dest: Any) -> bool:
    """Both one GCS file system's settings: Arrow copies between them with the store's ``rewriteTo``."""
    import pyarrow.fs as pafs

    gcs = getattr(pafs, "GcsFileSystem", None)
    return gcs is not None and isinstance(source, gcs) and isinstance(dest, gcs) and bool(source.equals(dest))


def copy_local(source: str, dest: str) -> int:
    """Copy a local file in the kernel (``copy_file_range``), or through user space where refused; bytes written."""
    return _copy_local(source, dest)[0]


def _copy_local(source: str, dest: str) -> tuple[int, str]:
    """:func:`copy_local`, and the way it went: ``kernel``, or ``user-space`` where the kernel refused."""
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    way = KERNEL
    with open(source, "rb") as fin, open(dest, "wb") as fout:
        try:
            while os.copy_file_range(fin.fileno(), fout.fileno(), _RANGE_BYTES):
                pass
        except OSError as exc:
            if exc.errno not in _NO_RANGE_COPY:
                raise
            way = USER_SPACE
            fin.seek(0)
            fout.seek(0)
            fout.truncate()
            shutil.copyfileobj(fin, fout, COPY_CHUNK_BYTES)
        fout.flush()
        return os.fstat(fout.fileno()).st_size, way


def file_size(io: FileIO, path: str) -> int | None:
    """Size of a stored file, or None when it does not exist.

    A FileIO that reports a missing object with some other error than ``FileNotFoundError`` is asked
    whether the file exists, in its own terms (``InputFile.exists``), before the error is raised.
    """
    stored = io.new_input(path)
    try:
        return len(stored)
    except FileNotFoundError:
        return None
    except OSError as exc:
        try:
            missing = not stored.exists()
        except OSError:
            missing = False
        if missing:
            return None
        raise storage_error(exc, f"inspecting {path}") from exc


def same_bytes(io_a: FileIO, path_a: str, io_b: FileIO, path_b: str) -> bool:
    """Whether two stored files hold the same bytes: by the stores' own checksums where both have one
    of the same algorithm (nothing read), else streamed side by side."""
    sum_a = stored_checksum(io_a, path_a)
    sum_b = stored_checksum(io_b, path_b) if sum_a is not None else None
    if sum_a is not None and sum_b is not None and sum_a.algorithm == sum_b.algorithm:
        return sum_a == sum_b
    with io_a.new_input(path_a).open(seekable=False) as a, io_b.new_input(path_b).open(seekable=False) as b:
        while True:
            chunk_a = a.read(COPY_CHUNK_BYTES)
            chunk_b = b.read(COPY_CHUNK_BYTES)
            if chunk_a != chunk_b:
                return False
            if not chunk_a:
                return True


def list_files(io: FileIO, prefix: str) -> Iterator[StoredFile]:
    """Every file under ``prefix`` (recursively), with its location spelled like ``prefix``."""
    from pyarrow.fs import FileSelector, FileType
    from pyiceberg.io.pyarrow import PyArrowFileIO

    if not isinstance(io, PyArrowFileIO):
        raise TerminalError(f"listing files needs PyIceberg's PyArrowFileIO, not {type(io).__name__}")
    scheme, netloc, path = PyArrowFileIO.parse_location(prefix, io.properties)
    fs = io.fs_by_scheme(scheme, netloc)
    root = prefix.rstrip("/")
    base = path.rstrip("/")
    try:
        infos = fs.get_file_info(FileSelector(base, recursive=True, allow_not_found=True))
    except Exception as exc:
        raise storage_error(exc, f"listing {prefix}") from exc
    for info in infos:
        if info.type == FileType.File:
            relative = posixpath.relpath(info.path, base)
            yield StoredFile(f"{root}/{relative}", info.size or 0)


def delete_file(io: FileIO, path: str) -> None:
    try:
        io.delete(path)
    except FileNotFoundError:
        return
    except Exception as exc:
        raise DestinationWriteError(f"cannot delete {path}: {exc}") from exc


def _quiet_delete(io: FileIO, path: str) -> None:
    try:
        io.delete(path)
    except Exception:  # best effort: the orphan sweep removes what is left
        return


# ------------------------------------------------------------------------------------------ S3, natively


@dataclass(frozen=True)
class S3Access:
    """How a FileIO reaches S3: endpoint, region and credentials (None: the SDK's default chain)."""

    endpoint: str | None
    region: str | None
    access_key: str | None
    secret_key: str | None
    session_token: str | None
    profile: str | None
    virtual_addressing: bool | None
    sse: str | None
    sse_kms_key: str | None

    def same_principal(self, other: S3Access) -> bool:
        """The same endpoint and credentials: one client may read the source and write the destination."""
        return (self.endpoint, self.region, self.access_key, self.secret_key, self.session_token, self.profile) == (
            other.endpoint,
            other.region,
            other.access_key,
            other.secret_key,
            other.session_token,
            other.profile,
        )


def _first(props: dict[str, str], *keys: str) -> str | None:
    return next((props[k] for k in keys if props.get(k)), None)


def s3_access(io: FileIO) -> S3Access | None:
    """The S3 settings of a FileIO's properties, or None when IceBridge cannot act with them itself.

    A request signer (a REST catalog signing each request), a role to assume or anonymous access are
    left to the FileIO: copies through such a FileIO are streamed, and its checksums are not asked for.
    """
    props = {str(k): str(v) for k, v in (getattr(io, "properties", None) or {}).items()}
    if any(props.get(k) for k in ("s3.signer", "s3.signer.uri", "s3.role-arn", "client.role-arn")):
        return None
    if props.get("s3.anonymous", "").lower() in ("true", "1", "yes"):
        return None
    virtual = props.get("s3.force-virtual-addressing")
    return S3Access(
        endpoint=props.get("s3.endpoint"),
        region=_first(props, "s3.region", "client.region"),
        access_key=_first(props, "s3.access-key-id", "client.access-key-id"),
        secret_key=_first(props, "s3.secret-access-key", "client.secret-access-key"),
        session_token=_first(props, "s3.session-token", "client.session-token"),
        profile=_first(props, "s3.profile-name", "client.profile-name"),
        virtual_addressing=None if virtual is None else virtual.lower() in ("true", "1", "yes"),
        sse=props.get("s3.server-side-encryption"),
        sse_kms_key=props.get("s3.sse-kms-key-id"),
    )


def _s3_object(location: str) -> tuple[str, str] | None:
    parsed = urlparse(location)
    if parsed.scheme not in S3_SCHEMES or not parsed.netloc:
        return None
    return parsed.netloc, parsed.path.lstrip("/")


def boto3_installed() -> bool:
    """Whether the AWS SDK for Python is importable (the ``s3`` extra): without it S3 copies are streamed."""
    try:
        import boto3  # noqa: F401
    except ImportError:
        return False
    return True


def shared_s3_access(source_io: FileIO, source_path: str, dest_io: FileIO, dest_path: str) -> S3Access | None:
    """The destination's S3 access when the store can copy the object itself: both on S3, same principal."""
    if _s3_object(source_path) is None or _s3_object(dest_path) is None:
        return None
    source, dest = s3_access(source_io), s3_access(dest_io)
    if source is None or dest is None or not source.same_principal(dest) or not boto3_installed():
        return None
    return dest


_CLIENTS: dict[S3Access, Any] = {}
_CLIENTS_LOCK = threading.Lock()


def s3_client(access: S3Access) -> Any:
    """A boto3 S3 client for these settings, made once per process (clients are thread-safe, sessions not)."""
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(access)
        if client is None:
            import boto3
            from botocore.config import Config

            session = boto3.session.Session(profile_name=access.profile) if access.profile else boto3.session.Session()
            addressing = {"addressing_style": "virtual" if access.virtual_addressing else "path"}
            client = session.client(
                "s3",
                endpoint_url=access.endpoint,
                region_name=access.region,
                aws_access_key_id=access.access_key,
                aws_secret_access_key=access.secret_key,
                aws_session_token=access.session_token,
                config=Config(
                    s3=addressing if access.virtual_addressing is not None else None,
                    retries={"max_attempts": 3, "mode": "standard"},
                    max_pool_connections=max(10, S3_COPY_PART_WORKERS * 2),
                ),
            )
            _CLIENTS[access] = client
        return client


def _s3_error(exc: BaseException, what: str) -> IceBridgeError:
    """Missing or forbidden objects are terminal; throttling, 5xx and connection trouble may pass on retry."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - only reached with boto3 installed
        return storage_error(exc, what)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound") or status == 404:
            return TerminalError(f"{what}: the object does not exist ({code or status})")
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch") or status == 403:
            return TerminalError(f"{what}: access denied ({code or status}); grant the credentials read and write")
        return StorageTransientError(f"{what}: {code or status}: {error.get('Message', exc)}")
    if isinstance(exc, BotoCoreError):
        return StorageTransientError(f"{what}: {exc}")
    return storage_error(exc, what)


def _full_object_checksum(head: dict[str, Any]) -> tuple[str, str] | None:
    """(algorithm, value) of a HeadObject answer's whole-object checksum; a multipart composite is none."""
    kind = head.get("ChecksumType")
    for name in S3_CHECKSUMS:
        value = head.get(f"Checksum{name}")
        if not value:
            continue
        if kind == "COMPOSITE" or (kind is None and "-" in str(value)):
            return None  # a checksum of the parts' checksums: it depends on how the object was uploaded
        return name, str(value)
    return None


def _head(client: Any, bucket: str, key: str) -> dict[str, Any]:
    return dict(client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED"))


def stored_checksum(io: FileIO, path: str) -> StoredChecksum | None:
    """The store's own checksum of a whole object, read from its metadata (no byte of the object is read).

    S3 answers ``x-amz-checksum-*`` to a HeadObject with checksums enabled when the object was written
    with one (or, on AWS, by default since 2025); a multipart object's composite checksum depends on
    its part sizes and does not count. GCS keeps a CRC32C of every object (``gcs.object_checksum``).
    None when the file is on neither, the FileIO's access cannot be used here, the SDK (``s3`` or
    ``gcs`` extra) is missing, or the object has no such checksum.

    Raises:
        TerminalError: the object does not exist or cannot be read.
    """
    from icebridge import gcs

    on_gcs = gcs.object_checksum(io, path)
    if on_gcs is not None:
        return StoredChecksum(*on_gcs)
    where = _s3_object(path)
    access = s3_access(io) if where is not None else None
    if where is None or access is None or not boto3_installed():
        return None
    try:
        head = _head(s3_client(access), *where)
    except Exception as exc:
        raise _s3_error(exc, f"asking {path} for its checksum") from exc
    found = _full_object_checksum(head)
    if found is None:
        return None
    return StoredChecksum(f"s3:{found[0]}", found[1], int(head.get("ContentLength", 0)))


def _crt_available() -> bool:
    try:
        import awscrt  # noqa: F401
    except ImportError:
        return False
    return True


def _s3_copy(access: S3Access, source_path: str, dest_path: str, expected_size: int) -> int:
    """Server-side copy of one object (one CopyObject, or parts for a large one); returns its size."""
    (src_bucket, src_key), (dst_bucket, dst_key) = _s3_object(source_path), _s3_object(dest_path)  # type: ignore[misc]
    client = s3_client(access)
    what = f"copying {source_path} to {dest_path} server-side"
    try:
        head = _head(client, src_bucket, src_key)
    except Exception as exc:
        raise _s3_error(exc, what) from exc
    size = int(head.get("ContentLength", -1))
    if size != expected_size:
        raise TerminalError(
            f"{source_path}: the object has {size} bytes but the manifest says {expected_size}; "
            "the source file is damaged"
        )
    found = _full_object_checksum(head)
    # the copy asks for the source's own algorithm, so both sides carry comparable checksums; botocore
    # without the CRT extension cannot name CRC64NVME on a request, and S3 keeps it on a plain copy anyway
    algorithm = found[0] if found else "CRC32"
    if algorithm == "CRC64NVME" and not _crt_available():
        algorithm = "" if size <= S3_SINGLE_COPY_MAX_BYTES else "CRC32"
    extra: dict[str, Any] = {}
    if access.sse:
        extra["ServerSideEncryption"] = access.sse
    if access.sse_kms_key:
        extra["SSEKMSKeyId"] = access.sse_kms_key
    source = {"Bucket": src_bucket, "Key": src_key}
    etag = head.get("ETag")  # every part is copied from this very version of the object
    try:
        if size <= S3_SINGLE_COPY_MAX_BYTES:
            if algorithm:
                extra["ChecksumAlgorithm"] = algorithm
            if etag:
                extra["CopySourceIfMatch"] = etag
            client.copy_object(Bucket=dst_bucket, Key=dst_key, CopySource=source, **extra)
        else:
            _s3_multipart_copy(client, source, etag, size, dst_bucket, dst_key, algorithm, extra)
    except IceBridgeError:
        raise
    except Exception as exc:
        raise _s3_error(exc, what) from exc
    return size


def _s3_multipart_copy(
    client: Any,
    source: dict[str, str],
    etag: str | None,
    size: int,
    bucket: str,
    key: str,
    algorithm: str,
    extra: dict[str, Any],
) -> None:
    part_bytes = max(S3_COPY_PART_BYTES, -(-size // 10_000), 5 * 1024 * 1024)
    create: dict[str, Any] = dict(extra)
    if algorithm:
        create["ChecksumAlgorithm"] = algorithm
        if algorithm in FULL_OBJECT_CRCS:
            create["ChecksumType"] = "FULL_OBJECT"
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]

    def part(number: int) -> dict[str, Any]:
        start = (number - 1) * part_bytes
        end = min(size, start + part_bytes) - 1
        kwargs: dict[str, Any] = {"CopySourceIfMatch": etag} if etag else {}
        answer = client.upload_part_copy(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            CopySource=source,
            CopySourceRange=f"bytes={start}-{end}",
            **kwargs,
        )["CopyPartResult"]
        done = {"PartNumber": number, "ETag": answer["ETag"]}
        done.update({k: v for k, v in answer.items() if k.startswith("Checksum") and k != "ChecksumType"})
        return done

    count = -(-size // part_bytes)
    try:
        with ThreadPoolExecutor(
            max_workers=min(S3_COPY_PART_WORKERS, count), thread_name_prefix="icebridge-s3"
        ) as pool:
            parts = list(pool.map(part, range(1, count + 1)))
        client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    except BaseException:
        try:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except Exception:  # noqa: BLE001 - the first error is the one to report; S3 expires the upload anyway
            pass
        raise

"""Google Cloud Storage: the store's own checksum of an object, read from its metadata.

Every GCS object carries a CRC32C of its whole content (composite objects included; an MD5 only when
uploaded in one piece), answered with its metadata by ``objects.get``. Level 3 compares those on both
sides instead of reading the bytes (``storage.stored_checksum``). The metadata is read with
``google-cloud-storage`` (the ``gcs`` extra), reaching the store as the table's FileIO does: PyIceberg's
``gcs.service.host`` (an endpoint other than Google's, such as an emulator), ``gcs.project-id`` and
``gcs.oauth2.token``; without a token, Google's default credentials, as PyArrow's own GCS client uses.

Copies need nothing from here: between two PyArrow GCS file systems with the same settings, Arrow's
copy is the store's ``rewriteTo`` (server-side; ``storage.transfer`` says so).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from icebridge.errors import IceBridgeError, StorageTransientError, TerminalError

if TYPE_CHECKING:
    from pyiceberg.io import FileIO

GCS_SCHEMES = frozenset({"gs", "gcs"})
ALGORITHM = "gcs:CRC32C"


@dataclass(frozen=True)
class GcsAccess:
    """How a FileIO reaches GCS: endpoint, project and an OAuth2 token (None: the defaults)."""

    endpoint: str | None
    project: str | None
    token: str | None


def gcs_object(location: str) -> tuple[str, str] | None:
    """(bucket, object name) of a ``gs://`` location; None for any other."""
    parsed = urlparse(location)
    if parsed.scheme not in GCS_SCHEMES or not parsed.netloc:
        return None
    return parsed.netloc, parsed.path.lstrip("/")


def gcs_access(io: FileIO) -> GcsAccess:
    props = {str(k): str(v) for k, v in (getattr(io, "properties", None) or {}).items()}
    return GcsAccess(
        endpoint=props.get("gcs.service.host") or None,
        project=props.get("gcs.project-id") or None,
        token=props.get("gcs.oauth2.token") or None,
    )


def installed() -> bool:
    """Whether ``google-cloud-storage`` is importable (the ``gcs`` extra): without it GCS files are read."""
    try:
        import google.cloud.storage  # noqa: F401
    except ImportError:
        return False
    return True


_CLIENTS: dict[GcsAccess, Any] = {}
_LOCK = threading.Lock()


def client(access: GcsAccess) -> Any:
    """A storage client for these settings, made once per process."""
    with _LOCK:
        made = _CLIENTS.get(access)
        if made is None:
            from google.cloud import storage

            credentials: Any = None
            if access.token:
                from google.oauth2.credentials import Credentials

                credentials = Credentials(token=access.token)
            elif access.endpoint:  # an endpoint of its own (an emulator, a proxy) with no token: anonymous
                from google.auth.credentials import AnonymousCredentials

                credentials = AnonymousCredentials()
            options = {"api_endpoint": access.endpoint} if access.endpoint else None
            made = storage.Client(project=access.project, credentials=credentials, client_options=options)
            _CLIENTS[access] = made
        return made


def _error(exc: BaseException, what: str) -> IceBridgeError:
    from google.api_core import exceptions as gexc

    if isinstance(exc, gexc.NotFound):
        return TerminalError(f"{what}: the object does not exist")
    if isinstance(exc, gexc.Forbidden | gexc.Unauthorized):
        return TerminalError(f"{what}: access denied; grant the credentials storage.objects.get")
    return StorageTransientError(f"{what}: {type(exc).__name__}: {exc}")


def object_checksum(io: FileIO, location: str) -> tuple[str, str, int] | None:
    """(algorithm, value, size) of a GCS object's CRC32C; None when not on GCS or the extra is missing.

    Raises:
        TerminalError: the object does not exist or cannot be read.
        StorageTransientError: the store answered with something a retry may get past.
    """
    where = gcs_object(location)
    if where is None or not installed():
        return None
    bucket, name = where
    try:
        blob = client(gcs_access(io)).bucket(bucket).get_blob(name)
    except Exception as exc:
        raise _error(exc, f"asking {location} for its checksum") from exc
    if blob is None:
        raise TerminalError(f"asking {location} for its checksum: the object does not exist")
    if not blob.crc32c:
        return None
    return ALGORITHM, str(blob.crc32c), int(blob.size or 0)

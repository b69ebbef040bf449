"""Domain errors: one flat list. Each is terminal (retrying cannot help) or transient (retry with backoff).

Callers branch on the class, never on the message text.
"""

from __future__ import annotations


class IceBridgeError(Exception):
    """Base of every error IceBridge raises on purpose."""

    transient = False


class TerminalError(IceBridgeError):
    """Retrying cannot help: the table fails with this reason."""


class TransientError(IceBridgeError):
    """A retry with backoff may succeed (storage hiccup, commit conflict, locked database)."""

    transient = True


class ConfigError(TerminalError):
    """The configuration file is wrong; the message names the file, the key and the fix."""


class CatalogUnreachableError(TerminalError):
    """A configured catalog could not be loaded or answered with an error."""


class SourceTableMissingError(TerminalError):
    """The source table no longer exists in its catalog."""


class SourceMetadataError(TerminalError):
    """The source table's metadata could not be read or parsed."""


class DestinationConflictError(TerminalError):
    """The destination table exists and differs from the source (schema, spec or sort order)."""


class DestinationWriteError(TerminalError):
    """The destination catalog or storage refused a write."""


class PlanError(TerminalError):
    """The plan cannot be carried out (two sources onto one destination, no mapping, a blocker)."""


class ValidationFailedError(TerminalError):
    """The destination does not hold the same data as the source."""


class ValidationError(TerminalError):
    """A validation could not run (a table vanished, a file unreadable): never a pass."""


class SourceChangedError(TerminalError):
    """The source has a snapshot newer than the one copied; sync or copy again before cut-over."""


class StateError(TerminalError):
    """The state store refused a change (a task taken by another worker, a missing row)."""


class CommitConflictError(TransientError):
    """The destination catalog rejected a commit because the table moved on; refresh and retry."""


class StorageTransientError(TransientError):
    """Storage answered with a retryable error (throttling, timeout, connection reset)."""

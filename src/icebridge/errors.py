"""Domain errors: one flat list. Each is terminal (retrying cannot help) or transient (retry with backoff).

Callers branch on the class, never on the message text.
"""

from __future__ import annotations

from datetime import datetime


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


class SourceReadOnlyError(TerminalError):
    """The source catalog refuses to drop a table's entry (a read-only, foreign table), so it cannot be archived."""


class SourceChangedError(TerminalError):
    """The source has a snapshot newer than the one copied; sync or copy again before cut-over."""


class LineageBrokenError(TerminalError):
    """The source's lineage no longer holds the last synced snapshot (rolled back, expired, re-created)."""


class SyncUnsupportedError(TerminalError):
    """A table's strategy keeps no destination IceBridge can replay source commits onto."""


class DestinationWrittenError(TerminalError):
    """The destination received commits IceBridge did not make; rollback would lose them."""


class QuietPeriodError(TransientError):
    """A source snapshot arrived during the cut-over's quiet period: writers are still active."""


class StateError(TerminalError):
    """The state store refused a change (a task taken by another worker, a missing row)."""


class TaskHeldError(StateError):
    """Another process holds the task's lease; this run leaves the table to it."""

    def __init__(self, message: str, holder: str = "", run_id: int | None = None, since: datetime | None = None):
        super().__init__(message)
        self.holder = holder
        self.run_id = run_id
        self.since = since


class StaleTaskError(StateError):
    """The task changed since it was read (another run finished or failed it); read it again."""


class LeaseLostError(StateError):
    """This process's lease on a task expired and another process took the task over."""


class LocationOverlapError(TerminalError):
    """A destination location is a source's folder or holds one (or sits inside one)."""


class UnrecordedFileError(TerminalError):
    """A file IceBridge did not write is in the way of a write or a delete; it is left untouched."""


class CommitConflictError(TransientError):
    """The destination catalog rejected a commit because the table moved on; refresh and retry."""


class StorageTransientError(TransientError):
    """Storage answered with a retryable error (throttling, timeout, connection reset)."""


class CopyInterrupted(IceBridgeError):
    """The run was asked to stop between two commits; what was committed stays committed, the next run resumes."""

    transient = True


class EngineNotInstalledError(TerminalError):
    """An engine's optional dependencies are not installed; the message names the pip extra."""


class CatalogMappingError(TerminalError):
    """A configured catalog has no Spark equivalent IceBridge can derive."""


class DatabricksUnreachableError(TransientError):
    """The Databricks workspace did not answer (connection refused, timeout, DNS); the message names the host."""


class DatabricksApiError(TerminalError):
    """The Databricks workspace refused a request (authentication, permission, bad request)."""


class DatabricksApiTransientError(TransientError):
    """The Databricks workspace answered 429/503/500 or similar and the SDK's own retries ran out."""


class DatabricksRunFailed(TerminalError):
    """A Databricks job run failed for a reason another try cannot fix (a SQL error, a refused cluster spec)."""


class DatabricksRunTransientError(TransientError):
    """A Databricks job run failed for a reason another try may fix (cluster launch failure, INTERNAL_ERROR)."""


class DatabricksRunCancelled(TransientError):
    """The migration was interrupted; the Databricks run was cancelled and the next migrate resumes it."""


class GovernanceError(TerminalError):
    """A governance step (freeze, swap, or undoing one) could not be done; the message says why and what to fix."""


class RegisterUnsupportedError(TerminalError):
    """The destination catalog cannot register a metadata file, so the ``register`` strategy cannot run there."""


class UsageError(TerminalError):
    """A command was asked for something it cannot mean (an empty --tables pattern, an unknown option value)."""


class NotFoundError(UsageError):
    """Something asked for by id or name is not in the state store or the configuration (a run, a task, a catalog)."""


class RunFinishedError(StateError):
    """A run cannot be changed any more (cancelled after it ended)."""


class ConfigChangedError(ConfigError):
    """The configuration file changed since it was read; read it again before saving over it."""


class ReportWriteError(TerminalError):
    """A run's report could not be written (the folder cannot be created, the disk is full)."""


# Exit code and HTTP status of each class; a class not listed takes those of its nearest listed base.
# Exit codes: 1 a table failed or is blocked, 2 bad configuration or usage (nothing was done).
ERROR_TABLE: dict[type[IceBridgeError], tuple[int, int]] = {
    IceBridgeError: (1, 500),
    TransientError: (1, 503),
    ConfigError: (2, 400),
    UsageError: (2, 400),
    PlanError: (2, 422),
    CatalogUnreachableError: (2, 502),
    StateError: (2, 503),
    TaskHeldError: (1, 409),
    StaleTaskError: (1, 409),
    LeaseLostError: (1, 409),
    ReportWriteError: (2, 500),
    ConfigChangedError: (2, 409),
    NotFoundError: (2, 404),
    RunFinishedError: (1, 409),
    SourceTableMissingError: (1, 404),
    SourceMetadataError: (1, 422),
    DestinationConflictError: (1, 409),
    DestinationWriteError: (1, 502),
    LocationOverlapError: (1, 409),
    UnrecordedFileError: (1, 409),
    SourceChangedError: (1, 409),
    LineageBrokenError: (1, 409),
    SyncUnsupportedError: (1, 422),
    DestinationWrittenError: (1, 409),
    QuietPeriodError: (1, 409),
    ValidationFailedError: (1, 422),
    ValidationError: (1, 500),
    CommitConflictError: (1, 409),
    EngineNotInstalledError: (2, 501),
    SourceReadOnlyError: (1, 409),
    DatabricksUnreachableError: (1, 504),
    DatabricksApiError: (1, 502),
    GovernanceError: (1, 409),
    RegisterUnsupportedError: (1, 422),
}


def _entry(exc: BaseException) -> tuple[int, int]:
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]  # type: ignore[index]
    return (1, 500)


def exit_code(exc: BaseException) -> int:
    """The CLI's exit code for an error that ended a command."""
    return _entry(exc)[0]


def http_status(exc: BaseException) -> int:
    """The HTTP status the API answers an error with."""
    return _entry(exc)[1]

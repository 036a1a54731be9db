"""hybridstack's exceptions, all of them: the error taxonomy that decides every resilience step.

Every provider failure is translated once, at the adapter boundary, into exactly one
of five provider-error kinds. What the executor does next depends on the kind alone,
never on which SDK raised it. Each branch of the tree is a decision a caller makes::

    HybridStackError
    ├── ConfigurationError (also ValueError) ... bad set-up; fix it, then retry
    │   ├── CatalogError ........................ bad catalog file or entry (names file/entry/field)
    │   ├── UnknownModelError (also LookupError)  a model reference that resolves to nothing
    │   ├── UnknownDataClassError (LookupError) . a data class the sovereignty rules do not know
    │   ├── MissingAPIKeyError .................. a deployment's key variable is unset
    │   ├── NoProviderError ..................... no key set and no local server answered
    │   ├── SovereigntyError .................... a route could send data where it may not go
    │   └── EmulatorConfigError ................. a bad emulator config file (names the field)
    ├── SecretPickleError (also TypeError) ...... an object holding a key was to be pickled
    ├── InvalidRequestError (also ValueError) ... a request hybridstack refuses to send
    │   └── BatchFileError ...................... bad batch task file (every line at fault listed)
    ├── ProviderError ........................... one attempt on one deployment failed
    │   ├── RetryableError ...................... retry here: 429, 5xx, 529, timeout, reset
    │   │   └── SchemaMismatchError ............. a reply that breaks the requested response schema
    │   ├── FailoverError ....................... fail over: bad key, quota, retired model, region
    │   │   └── DeploymentSkippedError .......... never sent: breaker open, scope held, no key
    │   ├── ContentRefusedError ................. content refused: try another jurisdiction
    │   ├── ContextTooLongError ................. context too long: only larger windows
    │   └── FatalError .......................... fatal: malformed request; stop and raise
    ├── NoRouteError ............................ no allowed deployment can serve the request
    ├── BudgetExceededError ..................... the call's deadline, attempts or spend ran out
    ├── StreamInterruptedError .................. a stream broke after its first token
    ├── LedgerError ............................. attempts could not be stored; .unwritten has them
    ├── AllAttemptsFailedError (ExceptionGroup) . every planned deployment failed
    └── GraphError .............................. the agent graph's own errors
        ├── EmptyTaskError (InvalidRequestError)  the task is empty
        ├── PlanValidationError (InvalidRequestError)  a plan is not a DAG of subtasks
        ├── UnroutableSubtaskError (NoRouteError) a subtask's skill has no allowed deployment
        ├── UnknownThreadError (LookupError) .... resume of a thread with no checkpoint
        ├── CheckpointError ..................... the checkpoint store failed
        │   ├── CheckpointStoreError (ConfigurationError)  the path cannot hold checkpoints
        │   └── CheckpointUnavailableError ...... a read/write failed mid-run; resume later
        ├── ThreadBusyError ..................... another run holds the thread's lease
        ├── LeaseLostError ...................... this run's lease was taken over; it stopped
        ├── PlanRejectedError ................... the plan was rejected at approval
        └── RunFailedError ...................... RunResult.raise_for_status: failed/partial run

Secrets never appear in these messages: adapters scrub every key (and every piece of
one) from provider text before it is put in an exception (:func:`hybridstack.scrub`),
and objects that hold a key refuse to be pickled (:class:`SecretPickleError`).

The classes are defined by family in private submodules (``_setup``: the root, set-up and
request errors; ``_provider``: one attempt's failure and its kinds; ``_call``: how a whole
call ends without an answer; ``_graph``: the agent graph's), but this module is their one
home: import them from here, and each says so in its ``__module__``. Nothing here imports
anything of hybridstack but these submodules: this is the bottom of the layers.
"""

from __future__ import annotations

from hybridstack.errors._call import (
    AllAttemptsFailedError,
    BudgetExceededError,
    LedgerError,
    NoRouteError,
    StreamInterruptedError,
)
from hybridstack.errors._graph import (
    CheckpointError,
    CheckpointStoreError,
    CheckpointUnavailableError,
    EmptyTaskError,
    GraphError,
    LeaseLostError,
    PlanRejectedError,
    PlanValidationError,
    RunFailedError,
    ThreadBusyError,
    UnknownThreadError,
    UnroutableSubtaskError,
)
from hybridstack.errors._provider import (
    ERROR_KINDS,
    ContentRefusedError,
    ContextTooLongError,
    DeploymentSkippedError,
    ErrorKind,
    FailoverError,
    FatalError,
    ProviderError,
    RetryableError,
    SchemaMismatchError,
    _rebuild_provider_error,
)
from hybridstack.errors._setup import (
    BatchFileError,
    CatalogError,
    ConfigurationError,
    EmulatorConfigError,
    HybridStackError,
    InvalidRequestError,
    MissingAPIKeyError,
    NoProviderError,
    SecretPickleError,
    SovereigntyError,
    UnknownDataClassError,
    UnknownModelError,
)

__all__ = [
    "ERROR_KINDS",
    "AllAttemptsFailedError",
    "BatchFileError",
    "BudgetExceededError",
    "CatalogError",
    "CheckpointError",
    "CheckpointStoreError",
    "CheckpointUnavailableError",
    "ConfigurationError",
    "ContentRefusedError",
    "ContextTooLongError",
    "DeploymentSkippedError",
    "EmptyTaskError",
    "EmulatorConfigError",
    "ErrorKind",
    "FailoverError",
    "FatalError",
    "GraphError",
    "HybridStackError",
    "InvalidRequestError",
    "LeaseLostError",
    "LedgerError",
    "MissingAPIKeyError",
    "NoProviderError",
    "NoRouteError",
    "PlanRejectedError",
    "PlanValidationError",
    "ProviderError",
    "RetryableError",
    "RunFailedError",
    "SchemaMismatchError",
    "SecretPickleError",
    "SovereigntyError",
    "StreamInterruptedError",
    "ThreadBusyError",
    "UnknownDataClassError",
    "UnknownModelError",
    "UnknownThreadError",
    "UnroutableSubtaskError",
]

# Pickles and tracebacks name a class by its ``__module__``: this one, as when the tree
# was a single file, so a pickle (a checkpoint, a message to a worker) written before
# or after the split loads in either, and no private submodule name leaks into docs.
for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type):
        _value.__module__ = __name__
_rebuild_provider_error.__module__ = __name__
del _name, _value

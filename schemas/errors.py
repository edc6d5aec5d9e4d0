"""Switchyard's one error tree; every error has a stable ``code``.

A job's errors reach the producer's reply as ``ErrorInfo`` (``info()``);
an operator's errors reach the shell as a message and ``exit_code``. Where an
error is also one of Python's own kinds (``ValueError``, ``LookupError``), it
derives from that too, so callers that catch the builtin keep working.

SwitchyardError                               code (exit code)
├── RetryableError            another attempt (or another model) may succeed
│   ├── ProviderTimeout           provider_timeout
│   ├── ProviderUnavailable       provider_unavailable   (5xx, connection refused, outage)
│   ├── RateLimited               rate_limited           (429, carries retry_after_s)
│   ├── SinkBackpressure          sink_backpressure      (flush before adding more)
│   └── KafkaTimeout              kafka_timeout          (the broker did not answer in time)
├── TerminalError             retrying the same job cannot help
│   ├── InvalidRequest            invalid_request        (not JSON, wrong schema)
│   │   ├── MessageTooLarge       message_too_large
│   │   ├── NestingTooDeep        nesting_too_deep       (JSON nested beyond MAX_JSON_DEPTH)
│   │   ├── UnknownTenant         unknown_tenant
│   │   ├── ReplyToRefused        reply_to_refused       (reply_to not allowed for the tenant)
│   │   └── Unauthenticated       unauthenticated        (unsigned where signing is required;
│   │       │                                             dead-lettered, never answered)
│   │       ├── SignatureInvalid  signature_invalid      (bad, incomplete or unknown key)
│   │       ├── SignatureStale    signature_stale        (timestamp outside the window)
│   │       └── TenantMismatch    tenant_mismatch        (signed by one tenant, names another)
│   ├── PolicyDenied              policy_denied          (no model satisfies the constraints)
│   ├── BudgetExhausted           budget_exhausted
│   ├── OverRateLimit             rate_limited           (over a tenant, team or app rate
│   │                                                     limit; retryable after retry_after_s)
│   ├── DeadlineExpired           deadline_expired
│   ├── Unprocessable             unprocessable          (a worker failed on this message)
│   ├── DispatchRefused           dispatch_refused       (a dispatch job fails the provider's
│   │                                                     re-check: tenant, models, reply_to)
│   ├── ContextTooLong            context_length_exceeded (a larger model may still fit)
│   └── ProviderRejected          provider_rejected      (4xx: auth, bad parameters)
├── InternalError             a bug or a broken invariant       internal_error (1)
└── OperatorError             a command cannot do what it was asked (1 unless noted)
    ├── UsageError                usage_error (2)        (a value the command cannot parse)
    ├── InvalidOption             invalid_option         (out of range; a needed option missing)
    ├── ConfigError               invalid_config (2)     (carries one issue per problem)
    ├── StackError                stack_error            (no broker; a stack already runs)
    ├── BrokerError               broker_error           (the embedded broker did not start)
    ├── TopicMissing              topic_missing          (run `switchyard topics create`)
    ├── TopicMismatch             topic_mismatch         (partitions differ from the catalogue)
    ├── ReplyTimeout              reply_timeout          (are the workers running?)
    ├── NothingSelected           nothing_selected       (no dead letter or row matches)
    ├── TelemetryUnavailable      telemetry_unavailable
    │   └── DatabaseLocked        database_locked        (another process holds chdb's files)
    ├── QueryRejected             query_rejected         (not a single read-only statement)
    ├── AccessDenied              access_denied          (a loopback surface refused the token)
    ├── ClusterKeyMissing         cluster_key_missing    (a worker needs SWITCHYARD_CLUSTER_KEY)
    ├── OutcomeFileError          outcome_file_invalid
    ├── TrainingError             training_failed
    └── RouterArtifactError       router_artifact_invalid
"""

from dataclasses import dataclass

from schemas.messages import ErrorInfo


class SwitchyardError(Exception):
    code = "internal_error"
    retryable = False
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def info(self) -> ErrorInfo:
        return ErrorInfo(code=self.code, message=self.message, retryable=self.retryable)


# --- a job's errors: their codes reach the reply ------------------------------


class RetryableError(SwitchyardError):
    retryable = True


class ProviderTimeout(RetryableError):
    code = "provider_timeout"


class ProviderUnavailable(RetryableError):
    code = "provider_unavailable"


class RateLimited(RetryableError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class SinkBackpressure(RetryableError):
    """The sink's buffer is full: flush before adding more."""

    code = "sink_backpressure"


class KafkaTimeout(RetryableError, TimeoutError):
    """The broker did not answer in time (a watermark, a read to the end)."""

    code = "kafka_timeout"


class TerminalError(SwitchyardError):
    pass


class InvalidRequest(TerminalError):
    code = "invalid_request"


class MessageTooLarge(InvalidRequest):
    code = "message_too_large"


class NestingTooDeep(InvalidRequest):
    """JSON nested deeper than ``processors.validate.MAX_JSON_DEPTH``."""

    code = "nesting_too_deep"


class UnknownTenant(InvalidRequest):
    code = "unknown_tenant"


class ReplyToRefused(InvalidRequest):
    """A ``reply_to`` the tenant may not use: internal, not allowed, or not existing."""

    code = "reply_to_refused"


class Unauthenticated(InvalidRequest):
    """The job does not prove its tenant: it is dead-lettered and gets no reply, since a
    reply would go to a ``reply_to`` that an unauthenticated producer chose."""

    code = "unauthenticated"


class SignatureInvalid(Unauthenticated):
    """Signature headers incomplete or malformed, an unknown key id, or a wrong HMAC."""

    code = "signature_invalid"


class SignatureStale(Unauthenticated):
    """An authentic signature whose timestamp is outside the freshness window (a replay)."""

    code = "signature_stale"


class TenantMismatch(Unauthenticated):
    """Signed with one tenant's key, the job names another tenant."""

    code = "tenant_mismatch"


class PolicyDenied(TerminalError):
    code = "policy_denied"


class BudgetExhausted(TerminalError):
    code = "budget_exhausted"


class OverRateLimit(TerminalError):
    """The job is over one of its tenant's rate limits: refused now, fine after the wait."""

    code = "rate_limited"
    retryable = True

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def info(self) -> ErrorInfo:
        return super().info().model_copy(update={"retry_after_s": self.retry_after_s})


class DeadlineExpired(TerminalError):
    code = "deadline_expired"


class Unprocessable(TerminalError):
    """A worker failed on one message (a bug or input nobody foresaw): the message is
    dead-lettered with this code instead of being retried forever or lost."""

    code = "unprocessable"


class DispatchRefused(TerminalError):
    """A dispatch job the provider worker will not call for: its tenant is not configured,
    no model of its chain passes policy now, its reply_to is refused, or its estimate is
    not a cost. The job is dead-lettered and answered on the shared replies topic."""

    code = "dispatch_refused"


class ContextTooLong(TerminalError):
    code = "context_length_exceeded"


class ProviderRejected(TerminalError):
    code = "provider_rejected"


class InternalError(SwitchyardError, RuntimeError):
    """A bug or a broken invariant: the process stops rather than guess."""

    code = "internal_error"


# --- an operator's errors: message and exit code reach the shell ---------------


class OperatorError(SwitchyardError):
    code = "operator_error"


class UsageError(OperatorError, ValueError):
    """An argument the command or function cannot take (an unparsable --since, say)."""

    code = "usage_error"
    exit_code = 2


class InvalidOption(OperatorError, ValueError):
    """An option's value is out of range (--jobs 0), or an option it needs is missing."""

    code = "invalid_option"


class StackError(OperatorError, RuntimeError):
    code = "stack_error"


class BrokerError(OperatorError, RuntimeError):
    code = "broker_error"


class TopicMissing(OperatorError, LookupError):
    code = "topic_missing"


class TopicMismatch(OperatorError, RuntimeError):
    """A topic exists with a partition count other than the catalogue's."""

    code = "topic_mismatch"


class ReplyTimeout(OperatorError, TimeoutError):
    """No reply within the time the caller gave."""

    code = "reply_timeout"


class NothingSelected(OperatorError, LookupError):
    """A selection (of dead letters, of feedback rows) that matches nothing."""

    code = "nothing_selected"


class TelemetryUnavailable(OperatorError, RuntimeError):
    code = "telemetry_unavailable"


class DatabaseLocked(TelemetryUnavailable):
    """Another process holds the embedded database at this path."""

    code = "database_locked"


class QueryRejected(OperatorError, ValueError):
    code = "query_rejected"


class AccessDenied(OperatorError, PermissionError):
    """A loopback surface (query service, simulator admin, budget page) refused the token."""

    code = "access_denied"


class ClusterKeyMissing(OperatorError, RuntimeError):
    """A worker was started without the cluster key that seals internal records."""

    code = "cluster_key_missing"


class OutcomeFileError(OperatorError, ValueError):
    """A file that cannot be read as outcome rows; the message names file and line."""

    code = "outcome_file_invalid"


class TrainingError(OperatorError, ValueError):
    """The rows cannot train a router (no train rows, say)."""

    code = "training_failed"


class RouterArtifactError(OperatorError, RuntimeError):
    """A router directory that cannot be loaded; the message says where and why."""

    code = "router_artifact_invalid"


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config file: where (dotted path, line) and what."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path or '<root>'}: {self.message}"


class ConfigError(OperatorError):
    """The config file is unreadable or invalid; ``issues`` has one entry per problem."""

    code = "invalid_config"
    exit_code = 2

    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        super().__init__(f"{source}: " + "; ".join(str(i) for i in issues))
        self.source = source
        self.issues = issues


class ConfigNeedsRestart(OperatorError):
    """A config applied live would change what workers build only at start."""

    code = "config_needs_restart"
    exit_code = 2

"""Switchyard's error tree; every error's ``code`` reaches the producer's reply.

SwitchyardError
├── RetryableError            another attempt (or another model) may succeed
│   ├── ProviderTimeout           provider_timeout
│   ├── ProviderUnavailable       provider_unavailable   (5xx, connection refused, outage)
│   └── RateLimited               rate_limited           (429, carries retry_after_s)
└── TerminalError             retrying the same job cannot help
    ├── InvalidRequest            invalid_request        (not JSON, wrong schema)
    │   ├── MessageTooLarge       message_too_large
    │   └── UnknownTenant         unknown_tenant
    ├── PolicyDenied              policy_denied          (no model satisfies the constraints)
    ├── BudgetExhausted           budget_exhausted
    ├── DeadlineExpired           deadline_expired
    ├── ContextTooLong            context_length_exceeded (a larger model may still fit)
    └── ProviderRejected          provider_rejected      (4xx: auth, bad parameters)
"""

from schemas.messages import ErrorInfo


class SwitchyardError(Exception):
    code = "internal_error"
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def info(self) -> ErrorInfo:
        return ErrorInfo(code=self.code, message=self.message, retryable=self.retryable)


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


class TerminalError(SwitchyardError):
    pass


class InvalidRequest(TerminalError):
    code = "invalid_request"


class MessageTooLarge(InvalidRequest):
    code = "message_too_large"


class UnknownTenant(InvalidRequest):
    code = "unknown_tenant"


class PolicyDenied(TerminalError):
    code = "policy_denied"


class BudgetExhausted(TerminalError):
    code = "budget_exhausted"


class DeadlineExpired(TerminalError):
    code = "deadline_expired"


class ContextTooLong(TerminalError):
    code = "context_length_exceeded"


class ProviderRejected(TerminalError):
    code = "provider_rejected"

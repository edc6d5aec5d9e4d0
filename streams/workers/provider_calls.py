"""Calling model endpoints for the provider worker: one pool and one gate per model."""

import asyncio
import time

from processors.provider_hop import CallResult
from schemas.config import ModelSpec, SwitchyardConfig
from schemas.errors import (
    InternalError,
    ProviderTimeout,
    RateLimited,
    RetryableError,
    SwitchyardError,
)
from schemas.messages import Attempt, AttemptOutcome, InferenceRequest
from streams.providers import ProviderClient, client_for
from streams.providers.transport import pooled_client


def outcome_of(error: SwitchyardError) -> AttemptOutcome:
    """How an attempt that raised ``error`` is recorded."""
    if isinstance(error, ProviderTimeout):
        return "timeout"
    if isinstance(error, RateLimited):
        return "rate_limited"
    if isinstance(error, RetryableError):
        return "unavailable"
    return "error"


class ModelCaller:
    """Makes the calls a job's decision asks for; owns the HTTP pools (``aclose``)."""

    def __init__(self, config: SwitchyardConfig) -> None:
        self.config = config
        # One connection pool per model, sized to its concurrency cap, on aiohttp's
        # connector (``streams.providers.transport``: httpx's own pool costs CPU per
        # open connection on every request).
        self.pools = {m.name: pooled_client(m.max_concurrency) for m in config.models}
        self.clients: dict[str, ProviderClient] = {
            m.name: client_for(m, self.pools[m.name]) for m in config.models
        }
        self.gates = {m.name: asyncio.Semaphore(m.max_concurrency) for m in config.models}

    async def aclose(self) -> None:
        for pool in self.pools.values():
            await pool.aclose()

    async def call(
        self, name: str, request: InferenceRequest, round_: int, deadline: float | None
    ) -> CallResult:
        """Ask model ``name`` once, within its gate and the job's ``deadline`` (epoch s).

        Never raises a provider's error: a failed call is a failed ``Attempt``."""
        spec = self.config.model(name)
        if spec is None:  # next_step only offers models that have gates
            raise InternalError(f"a call to {name!r}, which the config does not name")
        max_tokens = request.max_tokens or self.config.routing.default_max_tokens
        started = time.perf_counter()
        try:
            async with self.gates[name]:
                remaining = deadline - time.time() if deadline is not None else None
                if remaining is not None and remaining <= 0:
                    raise ProviderTimeout(f"{spec.provider}/{name}: deadline reached in queue")
                completion = await self.clients[name].complete(request, max_tokens, remaining)
        except SwitchyardError as exc:
            return CallResult(failed(spec, exc, _ms_since(started), round_))
        usage = completion.usage
        attempt = Attempt(
            model=name,
            provider=spec.provider,
            outcome="ok",
            latency_ms=_ms_since(started),
            round=round_,
            cost_usd=spec.cost_usd(usage.input_tokens, usage.output_tokens),
            tokens=usage.input_tokens + usage.output_tokens,
        )
        return CallResult(attempt, completion)


def failed(spec: ModelSpec, error: SwitchyardError, latency_ms: float, round_: int) -> Attempt:
    return Attempt(
        model=spec.name,
        provider=spec.provider,
        outcome=outcome_of(error),
        latency_ms=latency_ms,
        error=error.info(),
        round=round_,
        retry_after_s=error.retry_after_s if isinstance(error, RateLimited) else None,
    )


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000

"""Calling model endpoints for the provider worker: one pool and one gate per model."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from processors.fair_share import FairQueue
from processors.provider_hop import CallResult
from processors.redact import as_sent_to
from schemas.config import ModelSpec, SwitchyardConfig
from schemas.errors import (
    InternalError,
    ProviderTimeout,
    RateLimited,
    RetryableError,
    SwitchyardError,
)
from schemas.messages import Attempt, AttemptOutcome, InferenceRequest, Priority
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


class FairGate:
    """A model's ``max_concurrency``, handed out by fair share: a freed slot goes to the
    next waiting call by lane and tenant weight (``processors.fair_share``), not to the
    call that has waited longest, so one tenant's backlog at a model cannot hold
    another tenant's call behind it."""

    def __init__(self, slots: int, weight: Callable[[str], float]) -> None:
        self.free = slots
        self.waiting: FairQueue[asyncio.Future[None]] = FairQueue(weight)

    @asynccontextmanager
    async def slot(self, tenant: str, priority: Priority) -> AsyncIterator[None]:
        await self._acquire(tenant, priority)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, tenant: str, priority: Priority) -> None:
        if self.free > 0:  # nobody waits while a slot is free
            self.free -= 1
            return
        granted = asyncio.get_running_loop().create_future()
        self.waiting.push(granted, tenant, priority)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release()  # handed a slot as it was cancelled: pass it on
            raise

    def _release(self) -> None:
        while (waiter := self.waiting.pop()) is not None:
            if not waiter.done():  # a cancelled waiter stays queued until popped
                waiter.set_result(None)
                return
        self.free += 1


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
        self.gates = {m.name: FairGate(m.max_concurrency, self.share) for m in config.models}

    def share(self, tenant: str) -> float:
        return self.config.share(tenant)  # the config of the moment: it may change live

    async def aclose(self) -> None:
        for pool in self.pools.values():
            await pool.aclose()

    async def call(
        self,
        name: str,
        request: InferenceRequest,
        priority: Priority,
        round_: int,
        deadline: float | None,
    ) -> CallResult:
        """Ask model ``name`` once, within its gate and the job's ``deadline`` (epoch s).

        Never raises a provider's error: a failed call is a failed ``Attempt``."""
        spec = self.config.model(name)
        if spec is None:  # next_step only offers models that have gates
            raise InternalError(f"a call to {name!r}, which the config does not name")
        max_tokens = request.max_tokens or self.config.routing.default_max_tokens
        started = time.perf_counter()
        try:
            async with self.gates[name].slot(request.tenant, priority):
                remaining = deadline - time.time() if deadline is not None else None
                if remaining is not None and remaining <= 0:
                    raise ProviderTimeout(f"{spec.provider}/{name}: deadline reached in queue")
                sent = as_sent_to(request, spec, self.config)
                completion = await self.clients[name].complete(sent, max_tokens, remaining)
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

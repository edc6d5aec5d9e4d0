"""Endpoint health kept in step across provider workers through the health topic.

Each worker judges endpoints from its own calls (``processors.circuit``) and
publishes every breaker transition and every new Retry-After to a compacted
topic keyed by model; every worker follows that topic from the start and
applies what others found. One worker's discovery of an outage therefore
stops all of them within a fetch wait, and a recovered endpoint is closed
everywhere by the first successful probe. Published records are sealed with the
cluster key, and records without its seal are dropped: a forged ``open`` moves nothing.
"""

import logging
from datetime import UTC, datetime
from typing import Literal

from aiokafka import AIOKafkaProducer

from processors.circuit import CircuitBreaker, Transition
from processors.dispatch import EndpointGate
from processors.seal import seal_header
from schemas.codec import dumps
from schemas.config import SwitchyardConfig
from schemas.health import EndpointHealth
from schemas.messages import Attempt
from streams.kafka.consumers import DecodingFollower
from streams.kafka.seals import SealGate

log = logging.getLogger(__name__)

# Retry-After extensions shorter than this are not worth a message to everyone.
_COOL_DOWN_NEWS_S = 0.5


def _ts(at: datetime | None) -> float | None:
    return at.timestamp() if at is not None else None


def _at(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts else None


class HealthBoard:
    def __init__(
        self,
        config: SwitchyardConfig,
        bootstrap: str,
        topic: str,
        producer: AIOKafkaProducer,
        worker_id: str,
        gate: SealGate,
    ) -> None:
        self.topic = topic
        self.cluster_key = gate.cluster_key
        self.producer = producer
        self.worker_id = worker_id
        policy = config.dispatch.breaker
        self.gates = {m.name: EndpointGate(CircuitBreaker(policy)) for m in config.models}
        self.config = config
        self.share = 1.0
        self._set_limits()
        self._announced_cool: dict[str, float] = {}
        self.follower = DecodingFollower(bootstrap, topic, gate, EndpointHealth, self._apply)

    async def start(self) -> None:
        await self.follower.start()

    def pace_share(self, share: float) -> None:
        """Pace each endpoint with a configured ``requests_per_minute`` at ``share`` of it:
        the worker's share of the dispatch partitions, so the shares of all provider
        workers add up to the limit however many there are."""
        self.share = share
        self._set_limits()

    def use(self, config: SwitchyardConfig) -> None:
        """A live config change: new limits apply to the next call."""
        self.config = config
        self._set_limits()

    def _set_limits(self) -> None:
        for model in self.config.models:
            gate = self.gates.get(model.name)
            if gate is not None:
                rpm = model.requests_per_minute
                gate.pacer.set_limit(rpm / 60 * self.share if rpm else None)

    async def stop(self) -> None:
        await self.follower.stop()

    async def record(self, attempt: Attempt, now: float) -> None:
        """Feed one call's outcome to its endpoint's breaker and pacer."""
        gate = self.gates.get(attempt.model)
        if gate is None:
            return
        transition: Transition | None = None
        if attempt.outcome == "ok":
            gate.pacer.record_ok(now)
            transition = gate.breaker.record_success()
        elif attempt.outcome == "rate_limited":
            gate.pacer.record_rate_limited(now, attempt.retry_after_s)
            until = gate.pacer.cool_until
            if until - self._announced_cool.get(attempt.model, 0.0) > _COOL_DOWN_NEWS_S:
                self._announced_cool[attempt.model] = until
                await self._publish(attempt.model, gate, "rate limited (Retry-After)", "rate_limit")
        elif attempt.error is not None and attempt.error.retryable:
            transition = gate.breaker.record_failure(now, attempt.error.code)
        elif attempt.error is not None:
            # A 4xx answer (bad request, too long) shows the endpoint is up.
            transition = gate.breaker.record_success()
        if transition is not None:
            log.warning("circuit %s for %s: %s", transition.state, attempt.model, transition.reason)
            await self._publish(attempt.model, gate, transition.reason)

    async def _publish(
        self,
        model: str,
        gate: EndpointGate,
        reason: str,
        kind: Literal["circuit", "rate_limit"] = "circuit",
    ) -> None:
        health = EndpointHealth(
            model=model,
            kind=kind,
            state=gate.breaker.state,
            open_until=_at(gate.breaker.open_until) if gate.breaker.state == "open" else None,
            cool_until=_at(gate.pacer.cool_until),
            reason=reason,
            worker=self.worker_id,
            changed_at=datetime.now(UTC),
        )
        # Not awaited to the broker: health is advice, and a lost message only
        # means another worker finds the outage itself.
        key, value = model.encode(), dumps(health)
        seal = seal_header(self.cluster_key, self.topic, key, value)
        await self.producer.send(self.topic, key=key, value=value, headers=[seal])

    def _apply(self, health: EndpointHealth) -> None:
        gate = self.gates.get(health.model)
        if gate is None or health.worker == self.worker_id:
            return
        if health.kind == "circuit":
            gate.breaker.apply_remote(health.state, _ts(health.open_until))
        cool_until = _ts(health.cool_until)
        if cool_until:
            gate.pacer.cool_down(cool_until)

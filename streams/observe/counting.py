"""What each worker counts, read off the records it handles: the hops' own outputs
(``processors.outputs.Output``) say what was decided, so no decision code knows about
metrics. A worker holds one of these only while metrics are on; with them off it
holds None and counts nothing.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from processors.dispatch import EndpointGate
from processors.outputs import Output
from schemas.config import SwitchyardConfig
from schemas.decision import DispatchJob
from schemas.messages import Attempt, InferenceReply
from streams.observe.collectors import endpoint_state, kafka_lag, provider_load
from streams.observe.metrics import (
    ProviderMetrics,
    RouterMetrics,
    Tally,
    TelemetryMetrics,
    TenantLabels,
)
from streams.topics import TopicCatalogue

# Plan steps that mean a downgrade -> the rule that made it.
DOWNGRADES = {"rate_downgraded": "rate_limit", "budget_downgraded": "budget"}


def _tiers(catalogue: TopicCatalogue) -> list[str]:
    """Each delay tier's label: its topic's short name (``retry.5s``)."""
    names = catalogue.short_names()
    return [names[topic.name] for topic in catalogue.retry]


class RouterCounts:
    """Counts a router batch: records in and out, decisions, downgrades, rejections,
    cache hits, parked jobs; all added to their counters once per batch."""

    def __init__(
        self, metrics: RouterMetrics, catalogue: TopicCatalogue, config: SwitchyardConfig
    ) -> None:
        self.metrics = metrics
        self.names = catalogue.short_names()
        self.tiers = _tiers(catalogue)
        self.tenants = TenantLabels(config.tenants)

    def batch(
        self, topic: str, handled: Iterable[tuple[str, list[Output]]], seconds: float
    ) -> None:
        """One batch from ``topic``: each message's tenant label and its outputs."""
        m, tally = self.metrics, Tally()
        name = self.names.get(topic, "")
        for tenant, outputs in handled:
            tally.add(m.records_in(name, tenant))
            for output in outputs:
                tally.add(m.records_out(output.kind, tenant))
                message = output.message
                if isinstance(message, DispatchJob):
                    self._routed(tally, message, output)
                elif output.kind == "reply" and isinstance(message, InferenceReply):
                    self._answered(tally, message, tenant)
        tally.flush()
        m.batch_seconds.observe(seconds)

    def _routed(self, tally: Tally, job: DispatchJob, output: Output) -> None:
        m, decision = self.metrics, job.decision
        tally.add(m.decisions(decision.strategy, decision.chosen_model, decision.quality))
        for step in job.steps:
            rule = DOWNGRADES.get(step.kind)
            if rule is not None:
                tally.add(m.downgrades(rule))
        if output.kind == "retry":
            tally.add(m.parked(self.tiers[output.retry_tier]))

    def _answered(self, tally: Tally, reply: InferenceReply, tenant: str) -> None:
        m = self.metrics
        tally.add(m.replies(tenant, reply.status))
        if reply.status == "ok":  # the router answers itself only from the cache
            tally.add(m.cache_hits(tenant))
        elif reply.error is not None:
            tally.add(m.rejections(reply.error.code))


class ProviderCounts:
    """Counts a provider worker's fetches, calls and sends, and attaches its scrape-time
    state (``watch``); with ``metrics`` None (metrics off) every method does nothing."""

    def __init__(
        self, metrics: ProviderMetrics | None, catalogue: TopicCatalogue, config: SwitchyardConfig
    ) -> None:
        self.metrics = metrics
        self.names = catalogue.short_names()
        self.tiers = _tiers(catalogue)
        self.tenants = TenantLabels(config.tenants)

    def watch(
        self,
        consumer: AIOKafkaConsumer,
        committed: Mapping[TopicPartition, int],
        gates: Mapping[str, EndpointGate],
        load: Callable[[], tuple[int, int, int]],
    ) -> Callable[[], None]:
        """Read lag, endpoint state and load (running, waiting, waiting bytes) at each
        scrape, until the returned callable is called."""
        if self.metrics is None:
            return lambda: None
        state = self.metrics.state
        sources = [kafka_lag(consumer, committed, self.names), endpoint_state(gates)]
        detach = [state.attach(source) for source in [*sources, provider_load(load)]]

        def unwatch() -> None:
            for undo in detach:
                undo()

        return unwatch

    def fetched(self, topic: str, tenants: Sequence[str]) -> None:
        """One partition's fetched records, by each one's tenant."""
        m = self.metrics
        if m is None:
            return
        tally, name, label = Tally(), self.names.get(topic, ""), self.tenants.of
        for tenant in tenants:
            tally.add(m.records_in(name, label(tenant)))
        tally.flush()

    def call(self, attempt: Attempt, tenant: str, previous: Attempt | None) -> None:
        """One provider call; ``previous`` is the call made before it for the same job."""
        m, model = self.metrics, attempt.model
        if m is None:
            return
        m.call_seconds(attempt.provider, model, attempt.outcome).observe(attempt.latency_ms / 1000)
        if attempt.error is not None:
            m.errors(model, attempt.error.code).inc()
        if attempt.cost_usd:
            m.cost(self.tenants.of(tenant), model).inc(attempt.cost_usd)
        if attempt.tokens:
            m.tokens(model).inc(attempt.tokens)
        if previous is not None and previous.outcome != "ok" and previous.model != model:
            m.fallbacks(model).inc()
        if attempt.round > 0:
            m.retries(model).inc()

    def sent(self, outputs: list[Output], tenant: str) -> None:
        """A job's outputs, acknowledged by the broker."""
        m = self.metrics
        if m is None:
            return
        label = self.tenants.of(tenant)
        for output in outputs:
            m.records_out(output.kind, label).inc()
            if output.kind == "reply" and isinstance(output.message, InferenceReply):
                m.replies(label, output.message.status).inc()
            elif output.kind == "retry":
                m.parked(self.tiers[output.retry_tier]).inc()


class TelemetryCounts:
    """Counts the telemetry worker's records and ClickHouse inserts, and attaches its lag;
    with ``metrics`` None (metrics off) every method does nothing."""

    def __init__(self, metrics: TelemetryMetrics | None, catalogue: TopicCatalogue) -> None:
        self.metrics = metrics
        self.names = catalogue.short_names()

    def watch(
        self, consumer: AIOKafkaConsumer, committed: Mapping[TopicPartition, int]
    ) -> Callable[[], None]:
        """Read the consumer's lag at each scrape, until the returned callable is called."""
        if self.metrics is None:
            return lambda: None
        return self.metrics.state.attach(kafka_lag(consumer, committed, self.names))

    def fetched(self, topic: str, records: int) -> None:
        if self.metrics is not None:
            self.metrics.records_in(self.names.get(topic, ""), "").inc(records)

    def inserted(self, rows: Mapping[str, int], seconds: float) -> None:
        """One successful flush: rows per table, and how long it took."""
        if self.metrics is None:
            return
        for table, count in rows.items():
            self.metrics.rows(table).inc(count)
        self.metrics.insert_seconds.observe(seconds)

    def insert_failed(self) -> None:
        if self.metrics is not None:
            self.metrics.insert_failures.inc()

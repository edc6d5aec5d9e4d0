"""Every Prometheus metric the workers export, defined here and nowhere else.

Each worker process has one registry (``router_metrics``, ``provider_metrics``,
``telemetry_metrics``: built on first use) holding the families its role counts,
and ``streams.observe.endpoint`` serves it. Two kinds of family:

- Counters and histograms the hot path moves: records in and out, routing
  decisions, provider calls. Their labelled children are resolved once and kept
  (``Children``), and a batch counts into a plain dict first (``Tally``): a job
  costs a few dictionary look-ups, not a ``labels()`` call per metric.
- Gauges that are state (budget, circuit, pacing, lag, jobs in flight): nothing
  is updated per message; a ``StateCollector`` reads the worker's own state when
  Prometheus scrapes (``streams.observe.collectors`` has the readers).

Names follow Prometheus conventions: ``switchyard_`` prefix, ``_total`` for
counters, base units (``_seconds``, ``_usd``, ``_bytes``). Labels are bounded:
tenants the config names (any other is ``""``), models, providers, topics by their
name without the namespace (``requests.interactive``, ``retry.5s``), partitions,
strategies, error codes, outcomes. Never a request_id, a prompt or a key.
"""

import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# ``*_created`` series double every counter's output and no panel uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

PREFIX = "switchyard_"
# Provider calls: simulated models answer in 10-500 ms, real ones up to minutes.
CALL_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# A router batch (up to 500 jobs) or a ClickHouse insert.
BATCH_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

C = TypeVar("C", Counter, Histogram)
Reading = tuple[str, tuple[str, ...], float]  # family name, label values, value


class Children(Generic[C]):
    """A labelled family's children, each resolved once: ``labels()`` validates its
    arguments and takes a lock on every call, a dict look-up does not."""

    def __init__(self, family: C) -> None:
        self.family: C = family
        self._known: dict[tuple[str, ...], C] = {}

    def __call__(self, *values: str) -> C:
        child = self._known.get(values)
        if child is None:
            child = self.family.labels(*values)
            self._known[values] = child
        return child


class Tally:
    """Counts for one batch, added to their counters once at the end (``flush``)."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[Counter, float] = {}

    def add(self, counter: Counter, amount: float = 1.0) -> None:
        self._counts[counter] = self._counts.get(counter, 0.0) + amount

    def flush(self) -> None:
        for counter, amount in self._counts.items():
            counter.inc(amount)
        self._counts.clear()


@dataclass(frozen=True)
class GaugeSpec:
    """A gauge a ``StateCollector`` reads at scrape time."""

    name: str
    help: str
    labels: tuple[str, ...] = ()


Source = Callable[[], Iterable[Reading]]


class StateCollector(Collector):
    """Gauges read at scrape time from sources a worker attaches (and detaches when it
    stops). A source that raises is skipped for that scrape: a scrape never fails
    because one piece of state was mid-change."""

    def __init__(self, specs: Sequence[GaugeSpec]) -> None:
        self.specs = {spec.name: spec for spec in specs}
        self.sources: list[Source] = []

    def attach(self, source: Source) -> Callable[[], None]:
        """Read ``source`` at every scrape from now on; returns what detaches it."""
        self.sources.append(source)
        return lambda: self.sources.remove(source) if source in self.sources else None

    def describe(self) -> Iterable[Metric]:
        return self._families().values()

    def collect(self) -> Iterable[Metric]:
        families = self._families()
        for source in list(self.sources):
            try:
                readings = list(source())
            except Exception:
                log.debug("a metrics source failed this scrape", exc_info=True)
                continue
            for name, labels, value in readings:
                families[name].add_metric(labels, value)
        return families.values()

    def _families(self) -> dict[str, GaugeMetricFamily]:
        return {
            name: GaugeMetricFamily(name, spec.help, labels=spec.labels)
            for name, spec in self.specs.items()
        }


class TenantLabels:
    """A tenant's label value: its name if the config names it, else ``""``, so a forged
    or mistyped tenant cannot add series. ``use`` follows live config changes."""

    def __init__(self, tenants: Collection[str]) -> None:
        self.use(tenants)

    def use(self, tenants: Collection[str]) -> None:
        self.names = frozenset(tenants)
        self.by_key = {name.encode(): name for name in tenants}

    def of(self, tenant: str | None) -> str:
        return tenant if tenant in self.names else ""

    def of_key(self, key: bytes | None) -> str:
        """The label for a record keyed by its tenant's name."""
        return self.by_key.get(key, "") if key is not None else ""


class FlowMetrics:
    """What every worker counts: records in and out per topic and tenant, and lag.

    ``labels`` maps every sample name the registry can export (with ``_total``,
    ``_bucket``, ``_sum``, ``_count``) to its label names: what a dashboard may use.
    """

    def __init__(self, registry: CollectorRegistry, gauges: Sequence[GaugeSpec] = ()) -> None:
        self.registry = registry
        self.labels: dict[str, tuple[str, ...]] = {}
        doc = "records consumed, by topic (short name) and tenant"
        self.records_in = self._counters("records_in", doc, "topic", "tenant")
        doc = "records produced, by output (reply, dispatch, retry, telemetry, ...) and tenant"
        self.records_out = self._counters("records_out", doc, "output", "tenant")
        self.state = StateCollector([LAG, *gauges])
        registry.register(self.state)
        self.labels.update((spec.name, spec.labels) for spec in self.state.specs.values())

    def _counter(self, name: str, doc: str) -> Counter:
        self.labels[PREFIX + name + "_total"] = ()
        return Counter(PREFIX + name, doc, registry=self.registry)

    def _counters(self, name: str, doc: str, *labels: str) -> Children[Counter]:
        self.labels[PREFIX + name + "_total"] = labels
        return Children(Counter(PREFIX + name, doc, labels, registry=self.registry))

    def _histogram(self, name: str, doc: str, buckets: Sequence[float], *labels: str) -> Histogram:
        for suffix in ("_sum", "_count"):
            self.labels[PREFIX + name + suffix] = labels
        self.labels[PREFIX + name + "_bucket"] = (*labels, "le")
        return Histogram(PREFIX + name, doc, labels, buckets=buckets, registry=self.registry)


LAG = GaugeSpec(
    PREFIX + "consumer_lag_records",
    "high watermark minus committed offset, per partition this worker owns",
    ("topic", "partition"),
)
BUDGET_GAUGES = (
    GaugeSpec(PREFIX + "budget_spent_usd", "spent this budget period", ("tenant",)),
    GaugeSpec(PREFIX + "budget_reserved_usd", "reserved by jobs not settled yet", ("tenant",)),
    GaugeSpec(PREFIX + "budget_limit_usd", "budget_usd per period (tenants with one)", ("tenant",)),
    GaugeSpec(PREFIX + "budget_remaining_usd", "limit minus spent and reserved", ("tenant",)),
    GaugeSpec(
        PREFIX + "rate_limit_backlog_seconds",
        "how far a rate-limit cell's next free slot is ahead of now (0 = idle)",
        ("tenant", "limit"),
    ),
)
PROVIDER_GAUGES = (
    GaugeSpec(PREFIX + "circuit_state", "0 closed, 1 half_open, 2 open", ("model",)),
    GaugeSpec(
        PREFIX + "endpoint_pace_per_second",
        "calls per second this worker may make (429-learned rate or its share of "
        "requests_per_minute); absent when unpaced",
        ("model",),
    ),
    GaugeSpec(PREFIX + "endpoint_cooldown_seconds", "Retry-After still to wait", ("model",)),
    GaugeSpec(PREFIX + "jobs_in_flight", "jobs running (calls under way or pacing)"),
    GaugeSpec(PREFIX + "jobs_waiting", "fetched jobs waiting for a slot (read-ahead)"),
    GaugeSpec(PREFIX + "read_ahead_bytes", "raw bytes of the waiting jobs"),
)


class DispatchMetrics(FlowMetrics):
    """Router and provider: replies and parked jobs."""

    def __init__(self, registry: CollectorRegistry, gauges: Sequence[GaugeSpec] = ()) -> None:
        super().__init__(registry, gauges)
        self.replies = self._counters("replies", "replies sent", "tenant", "status")
        doc = "jobs parked on a delay topic (rate-limit queue, retry round), by tier"
        self.parked = self._counters("jobs_parked", doc, "tier")


class RouterMetrics(DispatchMetrics):
    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry, BUDGET_GAUGES)
        doc = "jobs routed, by strategy, chosen model and quality tier"
        self.decisions = self._counters("routing_decisions", doc, "strategy", "model", "tier")
        doc = "jobs served by a cheaper model, by the rule that downgraded them"
        self.downgrades = self._counters("routing_downgrades", doc, "rule")
        doc = "jobs refused (or expired) by the router, by error code"
        self.rejections = self._counters("routing_rejections", doc, "code")
        self.cache_hits = self._counters("cache_hits", "jobs answered from the cache", "tenant")
        doc = "deciding and sending one batch of jobs"
        self.batch_seconds = self._histogram("router_batch_duration_seconds", doc, BATCH_BUCKETS_S)


class ProviderMetrics(DispatchMetrics):
    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry, PROVIDER_GAUGES)
        name, doc = "provider_request_duration_seconds", "provider calls, by model and outcome"
        calls = self._histogram(name, doc, CALL_BUCKETS_S, "provider", "model", "outcome")
        self.call_seconds = Children(calls)
        doc = "failed provider calls, by model and error code"
        self.errors = self._counters("provider_errors", doc, "model", "code")
        doc = "calls to a model after another failed for the same job"
        self.fallbacks = self._counters("provider_fallbacks", doc, "model")
        doc = "calls in a retry round (the job came back from a delay topic)"
        self.retries = self._counters("provider_retries", doc, "model")
        doc = "spent on provider calls"
        self.cost = self._counters("provider_cost_usd", doc, "tenant", "model")
        self.tokens = self._counters("provider_tokens", "tokens in and out", "model")


class TelemetryMetrics(FlowMetrics):
    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        self.rows = self._counters("clickhouse_insert_rows", "rows inserted", "table")
        name, doc = "clickhouse_insert_duration_seconds", "one flush: at most one insert per table"
        self.insert_seconds = self._histogram(name, doc, BATCH_BUCKETS_S)
        doc = "flushes that failed (and are retried)"
        self.insert_failures = self._counter("clickhouse_insert_failures", doc)


ROLES: dict[str, type[FlowMetrics]] = {
    "router": RouterMetrics,
    "provider": ProviderMetrics,
    "telemetry": TelemetryMetrics,
}
_process: dict[str, FlowMetrics] = {}


def metrics_for(role: str) -> FlowMetrics:
    """The process's metrics for ``role`` (router, provider or telemetry)."""
    return _for_process(role, ROLES[role])


def router_metrics() -> RouterMetrics:
    return _for_process("router", RouterMetrics)


def provider_metrics() -> ProviderMetrics:
    return _for_process("provider", ProviderMetrics)


def telemetry_metrics() -> TelemetryMetrics:
    return _for_process("telemetry", TelemetryMetrics)


M = TypeVar("M", bound=FlowMetrics)


def _for_process(role: str, kind: type[M]) -> M:
    """The process's metrics for ``role``, built on their own registry on first use (a
    test that runs several roles in one process gets one registry per role)."""
    metrics = _process.get(role)
    if metrics is None:
        metrics = _process[role] = kind(CollectorRegistry(auto_describe=True))
    assert isinstance(metrics, kind)  # noqa: S101 - one kind per role by construction
    return metrics


def exported_names(registry: CollectorRegistry) -> set[str]:
    """Every sample name ``registry`` can export, children or not: counters with
    ``_total``, histograms with ``_bucket``, ``_sum`` and ``_count``."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    names: set[str] = set()
    for family in registry.collect():  # labelled families without children come too
        for suffix in suffixes.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names

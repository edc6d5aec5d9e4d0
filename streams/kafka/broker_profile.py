"""What the broker at a bootstrap address can do, and so which workarounds apply.

Switchyard runs on two engines: the embedded broker (tansu) and Apache Kafka (or a
Kafka-compatible service). Each workaround in ``streams/kafka/quirks.py`` is a
decision per engine, made here from what the broker is, not taken everywhere by
reflex:

- a waiting fetch is not woken by data: short fetch waits on the embedded broker
  (10 ms on a job's path, 250 ms for followers), which batch the followers' and the
  telemetry sink's reads by themselves; on Kafka, whose fetches return as soon as data
  comes, 500 ms on a job's path, and followers and the sink ask for 1 MB or 250 ms,
  whichever comes first: woken by every record instead, the sink made one ClickHouse
  insert per few rows and spent 77% of its time inserting (94 jobs/s, demo of 3,000);
- ListOffsets is wrong after multi-record batches: ends corrected by a fetch's high
  watermark on the embedded broker; trusted on Kafka, no probe fetch;
- a group join waits about half the rebalance timeout: a 4 s rebalance timeout on the
  embedded broker, so starts stay short; 30 s on Kafka, whose joins end as soon as every
  member has rejoined, so a member finishing its batch before it lets go of a
  partition (faust waits for it, the provider up to 2 s) is never expelled for being
  slow and its partition never handed over while it still writes;
- no idempotent or transactional producers: at-least-once with effects idempotent
  by offset and request_id on the embedded broker; on Kafka the provider writes each
  job's records in a transaction (``streams.workers.provider_outputs``) and every
  consumer reads committed records only.

A process learns the profile once per bootstrap (``detect``, at start-up) and reads it
with ``profile``; one never detected is treated as the embedded broker, whose
settings are correct on both engines, only costlier on Kafka.
"""

from dataclasses import dataclass
from typing import Literal

# tansu answers DescribeCluster with this id; Apache Kafka with a random one.
EMBEDDED_CLUSTER_ID = "tansu_cluster"


@dataclass(frozen=True)
class BrokerProfile:
    engine: Literal["embedded", "kafka"]
    job_fetch_wait_ms: int  # consumers on a job's path: router inputs, dispatch, replies
    follow_fetch_wait_ms: int  # followers of shared state, the telemetry sink
    follow_fetch_min_bytes: int  # ...which read in batches: what a fetch waits to gather
    exact_end_offsets: bool  # ListOffsets gives the true end: no high-watermark probe
    transactions: bool  # idempotent and transactional producers work
    rebalance_timeout_ms: int  # how long a group waits for a member to rejoin

    def fetch_settings(self, batched: bool = False) -> dict[str, int | str]:
        """A consumer's fetch wait and minimum: a job's path's, or (``batched``) a
        follower's or the telemetry sink's, which read in batches. Where producers write
        in transactions, every reader reads committed records only."""
        isolation = {"isolation_level": self.isolation_level}
        if batched:
            return {
                "fetch_max_wait_ms": self.follow_fetch_wait_ms,
                "fetch_min_bytes": self.follow_fetch_min_bytes,
                **isolation,
            }
        return {"fetch_max_wait_ms": self.job_fetch_wait_ms, "fetch_min_bytes": 1, **isolation}

    @property
    def isolation_level(self) -> str:
        return "read_committed" if self.transactions else "read_uncommitted"


# Chosen with the bench's idle scenario (README, "Fetch wait"): on tansu the wait is
# the delivery latency floor, so a job's path waits 10 ms and followers, whose readers
# can be a quarter second behind, 250 ms.
EMBEDDED = BrokerProfile(
    "embedded",
    10,
    250,
    follow_fetch_min_bytes=1,
    exact_end_offsets=False,
    transactions=False,
    rebalance_timeout_ms=4_000,
)
# Kafka answers a waiting fetch as soon as a record arrives: a long wait costs no
# latency and saves the brokers a hundred empty fetches a second per consumer.
APACHE_KAFKA = BrokerProfile(
    "kafka",
    500,
    250,
    follow_fetch_min_bytes=1_000_000,
    exact_end_offsets=True,
    transactions=True,
    rebalance_timeout_ms=30_000,
)

_known: dict[str, BrokerProfile] = {}


def profile(bootstrap: str | list[str]) -> BrokerProfile:
    """The profile ``detect`` found for ``bootstrap``; the embedded one if never detected."""
    return _known.get(_key(bootstrap), EMBEDDED)


def profile_of_cluster(cluster_id: str | None) -> BrokerProfile:
    return EMBEDDED if cluster_id == EMBEDDED_CLUSTER_ID else APACHE_KAFKA


async def detect(bootstrap: str) -> BrokerProfile:
    """Ask the broker what it is (one DescribeCluster), remember and return the answer."""
    key = _key(bootstrap)
    if key not in _known:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
        await admin.start()
        try:
            described = await admin.describe_cluster()
        finally:
            await admin.close()
        _known[key] = profile_of_cluster(described.get("cluster_id"))
    return _known[key]


def _key(bootstrap: str | list[str]) -> str:
    """One spelling of an address list (faust hands aiokafka a list, users a string)."""
    servers = bootstrap.split(",") if isinstance(bootstrap, str) else bootstrap
    return ",".join(s.strip() for s in servers)

"""Creating the catalogue's topics, before anything else touches the broker.

On a real cluster a topic is created by the controller and reaches each broker's
metadata a moment later: a consumer that assigns a just-created topic can see no
partitions yet. ``ensure_topics`` therefore returns only once every broker's
metadata has every topic it created with all its partitions led, so nothing
started after it meets a half-known topic.
"""

import asyncio
import time
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.protocol.metadata import MetadataRequest

from schemas.errors import KafkaTimeout, TopicMismatch
from streams.kafka.broker_profile import detect
from streams.topics import TopicSpec

VISIBLE_WITHIN_S = 30.0


def replication_for(brokers: int, configured: int | None) -> tuple[int, int]:
    """(replication factor, ``min.insync.replicas``) for a cluster of ``brokers``.

    Unconfigured: 3 replicas with 2 in sync where there are 3 brokers or more, so an
    acknowledged (``acks=all``) record survives the loss of any one broker; else
    one copy per broker. A configured factor keeps one replica of slack in sync.
    """
    factor = configured if configured is not None else min(3, brokers)
    if factor > brokers:
        raise TopicMismatch(f"replication factor {factor} needs {factor} brokers, {brokers} up")
    return factor, max(1, min(2, factor - 1))


async def cluster_replication(bootstrap: str, configured: int | None) -> tuple[int, int]:
    """``replication_for`` the cluster at ``bootstrap``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        return replication_for(len(await _broker_ids(admin)), configured)
    finally:
        await admin.close()


async def _broker_ids(admin: AIOKafkaAdminClient) -> list[int]:
    return [int(b["node_id"]) for b in (await admin.describe_cluster())["brokers"]]


async def ensure_topics(
    bootstrap: str, specs: list[TopicSpec], replication_factor: int | None = None
) -> list[str]:
    """Create the missing topics; return the names created.

    Existing topics are checked, not altered: the partition count decides which
    partition a tenant's state lives on, so a mismatch is an error to fix by hand.
    ``replication_factor`` None picks one by the cluster's size (``replication_for``).
    """
    await detect(bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        # list_topics asks for all topics, which does not auto-create any.
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            brokers = await _broker_ids(admin)
            factor, min_isr = replication_for(len(brokers), replication_factor)
            await admin.create_topics([_new_topic(s, factor, min_isr) for s in missing])
            await _wait_visible(admin, brokers, {s.name: s.partitions for s in missing})
        present = [s for s in specs if s.name in existing]
        if present:
            counts = _partition_counts(await admin.describe_topics([s.name for s in present]))
            wrong = [
                f"{s.name} has {counts.get(s.name)}, expected {s.partitions}"
                for s in present
                if counts.get(s.name) != s.partitions
            ]
            if wrong:
                raise TopicMismatch("; ".join(wrong))
        return [s.name for s in missing]
    finally:
        await admin.close()


def _new_topic(spec: TopicSpec, factor: int, min_isr: int) -> NewTopic:
    config = {**spec.broker_config(), "min.insync.replicas": str(min_isr)}
    return NewTopic(spec.name, spec.partitions, factor, topic_configs=config)


def _partition_counts(described: list[dict[str, Any]]) -> dict[str, int]:
    """Partitions with a leader, per topic described without an error."""
    return {
        d["topic"]: sum(1 for p in d["partitions"] if p["leader"] >= 0)
        for d in described
        if d["error_code"] == 0
    }


async def _wait_visible(
    admin: AIOKafkaAdminClient, nodes: list[int], partitions: dict[str, int]
) -> None:
    """Until every broker's metadata has each topic with all its partitions led: a
    client asks whichever broker it likes, so one broker knowing is not enough."""
    deadline = time.monotonic() + VISIBLE_WITHIN_S
    for node in nodes:
        while True:
            # aiokafka's admin describes topics on a random broker only; ask each one.
            response = await admin._send_request_to_node(node, MetadataRequest(list(partitions)))
            counts = _partition_counts(response.to_object()["topics"])
            late = sorted(name for name, n in partitions.items() if counts.get(name) != n)
            if not late:
                break
            if time.monotonic() > deadline:
                raise KafkaTimeout(
                    f"topics created but not led on broker {node} within "
                    f"{VISIBLE_WITHIN_S:g}s: {late}"
                )
            await asyncio.sleep(0.1)


async def delete_namespace(bootstrap: str, namespace: str) -> list[str]:
    """Delete every topic of one deployment namespace (its catalogue's and the router's
    faust topics); return the names deleted.

    For throwaway stacks (chaos runs, tests): on Kafka every partition left behind is
    replicated and fetched for as long as the cluster lives, so a session of such stacks
    would otherwise slow every later one. The embedded broker keeps them in memory at no
    such cost and is left as it is (its deletes are not exercised anywhere else).
    """
    if (await detect(bootstrap)).engine != "kafka":
        return []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        doomed = [
            name
            for name in await admin.list_topics()
            if name.startswith((f"{namespace}.", f"{namespace}-"))
        ]
        if doomed:
            await admin.delete_topics(doomed)
        return doomed
    finally:
        await admin.close()

"""Creating the catalogue's topics, before anything else touches the broker."""

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.errors import TopicMismatch
from streams.topics import TopicSpec


async def ensure_topics(
    bootstrap: str, specs: list[TopicSpec], replication_factor: int = 1
) -> list[str]:
    """Create the missing topics; return the names created.

    Existing topics are checked, not altered: the partition count decides which
    partition a tenant's state lives on, so a mismatch is an error to fix by hand.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        # list_topics asks for all topics, which does not auto-create any.
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        s.name, s.partitions, replication_factor, topic_configs=s.broker_config()
                    )
                    for s in missing
                ]
            )
        present = [s for s in specs if s.name in existing]
        if present:
            described = await admin.describe_topics([s.name for s in present])
            counts = {d["topic"]: len(d["partitions"]) for d in described}
            wrong = [
                f"{s.name} has {counts[s.name]}, expected {s.partitions}"
                for s in present
                if counts.get(s.name) != s.partitions
            ]
            if wrong:
                raise TopicMismatch("; ".join(wrong))
        return [s.name for s in missing]
    finally:
        await admin.close()

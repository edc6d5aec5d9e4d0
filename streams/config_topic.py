"""Reading and writing the config topic for ``switchyard config apply``.

Records are sealed with the cluster key like every internal record: a worker follows
only versions the deployment wrote (``streams.workers.live_config``).
"""

from pydantic import ValidationError

from processors.seal import seal_header
from schemas.codec import dumps
from schemas.live_config import AppliedConfig
from sinks.kafka_out import producer_for
from streams.kafka.reading import read_to_end
from streams.kafka.seals import SealGate
from streams.topics import TopicCatalogue


async def current_version(
    bootstrap: str, catalogue: TopicCatalogue, gate: SealGate
) -> AppliedConfig | None:
    """The last sealed, readable version on the config topic; None if nothing was applied."""
    topic = catalogue.config.name
    latest = None
    async for record in read_to_end(bootstrap, topic, "config topic"):
        if not gate.admits(topic, record.key, record.value, record.headers):
            continue
        try:
            latest = AppliedConfig.model_validate_json(record.value)
        except ValidationError:
            continue
    return latest


async def publish_version(
    bootstrap: str, topic: str, cluster_key: bytes, record: AppliedConfig
) -> None:
    """Write ``record`` to the config topic, sealed, and wait for the broker's ack."""
    value = dumps(record)
    key = record.version.encode()
    producer = producer_for(bootstrap, max(4 * len(value), 1_048_576))
    await producer.start()
    try:
        headers = [seal_header(cluster_key, topic, key, value)]
        await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


__all__ = ["current_version", "publish_version"]

"""Workarounds for measured defects of the embedded broker and faust 0.15.3.

Each has a test in tests/streams/test_quirks.py that fails if it stops working.

1. End offsets (tansu 0.6): ListOffsets reports the end of a partition as the
   base offset of its last record batch plus one, so it is too small after any
   multi-record batch. faust's table recovery reads the changelog only up to
   that offset and silently restores stale values. ``true_end_offsets`` asks a
   fetch instead: a Fetch response's high watermark is right, so recovery reads
   to it. On a correct broker both agree and the probe costs one fetch per
   changelog partition at start-up.
2. Headers (faust 0.15.3 + aiokafka 0.14): ``Producer.supports_headers`` reads
   ``client.api_version``, which aiokafka 0.14 removed. aiokafka 0.14 only
   speaks record-batch (v2) message formats, which always carry headers.
3. Fetch wait (tansu 0.6): a fetch waiting for data is not woken when data
   arrives; it returns only at ``fetch_max_wait_ms``. Measured delivery latency
   is up to that wait (faust hard-codes 1.5 s). On this broker consumers on a
   job's path wait 10 ms and followers 250 ms, trading idle fetches for latency
   (``broker_profile``; Kafka wakes fetches on data and waits longer).
4. Idempotent and transactional producers fail on tansu (InitProducerId answers
   an unknown error). On tansu nothing enables them: the router runs faust's
   at_least_once guarantee and makes its effects idempotent instead. On Kafka the
   provider writes in transactions (``streams.workers.provider_outputs``), and the
   router's faust consumer is made to read committed records only.
5. Changelog acks (faust 0.15.3): a table changelog topic declared with
   ``app.topic(...)`` acks by default, so faust's livelock check watches it like
   an agent's input; nothing streams from it after recovery, its end moves past
   the position as the table is written, and from ``stream_processing_timeout``
   (300 s) on faust logs "Stream has not started processing" for each changelog
   partition every 1.25 s. The router declares its changelog ``acks=False``, as
   faust does for the changelogs it names itself (streams/workers/router.py).
6. Spinner (faust 0.15.3): ``faust.Worker`` always makes a terminal spinner, even
   with ``quiet=True``, and to spin it on every log record it adds a DEBUG handler
   to the root logger and sets the root level to DEBUG. Every library's debug call
   then builds a record: aiokafka's "Sending (key=%s value=%s)" for each message
   the router sends, with the job (its prompt) as an argument, handed to that
   handler; 10% of the router's samples under load (py-spy) went to building
   such records, and the spinner wrote terminal escape codes into the log.
   ``quiet_worker`` builds the worker without a spinner, so the root logger keeps
   the level the command chose.
"""

import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.errors import KafkaTimeout
from streams.kafka.broker_profile import profile

_applied = False


async def true_end_offsets(
    bootstrap: str | list[str], reported: Mapping[Any, int | None], timeout_s: float = 10.0
) -> dict[Any, int | None]:
    """Correct reported end offsets with the high watermark of a real fetch.

    ``reported`` maps TopicPartition-like keys (topic, partition) to the
    ListOffsets answer; partitions reported empty need no probe, nor does a broker
    whose ListOffsets is right (Apache Kafka).
    """
    result: dict[Any, int | None] = dict(reported)
    if profile(bootstrap).exact_end_offsets:
        return result
    probe_from = {tp: end for tp, end in reported.items() if end}
    if not probe_from:
        return result
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await probe.start()
    try:
        keys = {TopicPartition(tp.topic, tp.partition): tp for tp in probe_from}
        probe.assign(list(keys))
        for ktp, tp in keys.items():
            probe.seek(ktp, max(int(probe_from[tp]) - 1, 0))
        pending = set(keys)
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            await probe.getmany(*pending, timeout_ms=200, max_records=1)
            for ktp in list(pending):
                watermark = probe.highwater(ktp)
                if watermark is not None:
                    tp = keys[ktp]
                    result[tp] = max(int(watermark), int(probe_from[tp]))
                    pending.discard(ktp)
        if pending:
            raise KafkaTimeout(f"no fetch high watermark for {sorted(map(str, pending))}")
    finally:
        await probe.stop()
    return result


def apply() -> None:
    """Patch faust once per process; idempotent."""
    global _applied
    if _applied:
        return
    from faust.transport.drivers import aiokafka as faust_aiokafka

    thread_cls = faust_aiokafka.AIOKafkaConsumerThread
    original = thread_cls._highwaters

    async def _highwaters(self: Any, partitions: Iterable[Any]) -> Mapping[Any, int | None]:
        partitions = list(partitions)
        reported = await original(self, partitions)
        if self.consumer.in_transaction:
            return reported
        consumer = self._ensure_consumer()
        bootstrap = consumer._client._bootstrap_servers
        return await true_end_offsets(bootstrap, reported)

    def supports_headers(self: Any) -> bool:
        return True

    create_consumer = thread_cls._create_worker_consumer

    def _create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = create_consumer(self, transport)
        engine = profile(consumer._client._bootstrap_servers)
        # Both read when the fetcher starts. faust reads committed records only in its
        # own exactly_once mode; the router needs it wherever providers write settlements
        # in transactions, or an aborted one would be counted.
        consumer._fetch_max_wait_ms = engine.job_fetch_wait_ms
        consumer._isolation_level = engine.isolation_level
        return consumer

    setattr(thread_cls, "_highwaters", _highwaters)  # noqa: B010 - patching a method
    setattr(faust_aiokafka.Producer, "supports_headers", supports_headers)  # noqa: B010
    setattr(thread_cls, "_create_worker_consumer", _create_worker_consumer)  # noqa: B010
    _applied = True


def quiet_worker(app: Any, loglevel: str) -> Any:
    """A ``faust.Worker`` for ``app`` logging at ``loglevel``, without faust's spinner."""
    import faust

    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.spinner = None
    return worker


__all__ = ["apply", "quiet_worker", "true_end_offsets"]

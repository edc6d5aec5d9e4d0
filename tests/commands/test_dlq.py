"""``switchyard dlq list`` and ``replay`` against the real broker, run through ``cli.main``."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from commands.cli import main
from processors.authenticate import verify
from schemas.codec import dumps
from schemas.dead_letter import DeadLetter
from schemas.messages import ErrorInfo
from sinks.kafka_out import producer_for
from streams.kafka.admin import ensure_topics
from streams.kafka.quirks import true_end_offsets
from streams.local.broker import EmbeddedBroker
from streams.tenant_keys import Keyring
from streams.topics import TopicCatalogue
from tests.helpers import sample_config

AT = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
BAD_TYPES = b'{"request_id":"r-types","tenant":"acme","messages":"hello","max_tokens":"lots"}'
NOBODY = b'{"request_id":"r-nobody","tenant":"nobody","messages":[{"role":"user","content":"hi"}]}'
NOT_JSON = b"this is not json {"
DISPATCH = (
    b'{"request_id":"r-dispatch","tenant":"globex","messages":[{"role":"user","content":"x"}]}'
)

Record = tuple[bytes | None, bytes]


def _letter(
    code: str, payload: bytes, request_id: str | None, tenant: str | None, **fields: Any
) -> DeadLetter:
    values: dict[str, Any] = {
        "error": ErrorInfo(code=code, message=f"{code} happened"),
        "stage": "validate",
        "source_topic": "requests",
        "source_partition": 0,
        "source_offset": 7,
        "request_id": request_id,
        "tenant": tenant,
        "payload": payload.decode(),
        "payload_bytes": len(payload),
        "payload_truncated": False,
        "dead_lettered_at": AT,
    }
    values.update(fields)
    return DeadLetter(**values)


# Offsets 0-4 on the dead-letter topic; offset 5 holds a record that is no letter.
LETTERS = [
    _letter("invalid_request", BAD_TYPES, "r-types", "acme"),
    _letter("unknown_tenant", NOBODY, "r-nobody", "nobody"),
    _letter(
        "message_too_large",
        b'{"request_id":"r-big","tenant":"acme","mess',
        "r-big",
        "acme",
        payload_bytes=5_000_000,
        payload_truncated=True,
    ),
    _letter("invalid_request", NOT_JSON, None, None),
    _letter("provider_unavailable", DISPATCH, "r-dispatch", "globex", stage="dispatch"),
]


@pytest.fixture
def catalogue(
    broker: EmbeddedBroker, namespace: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> TopicCatalogue:
    """The CLI pointed at the test broker and namespace; no topics created yet."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP", broker.bootstrap)
    monkeypatch.setenv("SWITCHYARD_NAMESPACE", namespace)
    monkeypatch.setenv("SWITCHYARD_HOME", str(tmp_path))
    return TopicCatalogue(namespace)


@pytest.fixture
def letters(broker: EmbeddedBroker, catalogue: TopicCatalogue) -> list[DeadLetter]:
    """LETTERS and one unreadable record on the dead-letter topic, sent in one batch."""

    async def write() -> None:
        await ensure_topics(broker.bootstrap, [catalogue.requests, catalogue.dead_letter])
        producer = producer_for(broker.bootstrap, 1_048_576)
        await producer.start()
        try:
            # Sent without waiting, so they share a batch: the broker then reports
            # the end via ListOffsets as 1, and only a fetch's watermark is right.
            for letter in LETTERS:
                key = letter.request_id.encode() if letter.request_id else None
                await producer.send(catalogue.dead_letter.name, dumps(letter), key=key)
            await producer.send(catalogue.dead_letter.name, b"not a letter")
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(write())
    return LETTERS


async def _read_all(bootstrap: str, topic: str) -> list[Record]:
    """Every record on ``topic`` as (key, value), read up to the true end offsets."""
    return [(key, value) for key, value, _ in await _read_with_headers(bootstrap, topic)]


async def _read_with_headers(
    bootstrap: str, topic: str
) -> list[tuple[bytes | None, bytes, dict[str, bytes]]]:
    """Every record on ``topic`` as (key, value, headers), up to the true end offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        assert topic in await consumer.topics()  # also loads its partitions, creating nothing
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        assert tps, f"{topic} has no partitions"
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await true_end_offsets(bootstrap, await consumer.end_offsets(tps))
        records: list[tuple[bytes | None, bytes, dict[str, bytes]]] = []
        for tp in tps:
            while await consumer.position(tp) < (ends[tp] or 0):
                batch = await consumer.getmany(tp, timeout_ms=2000)
                assert batch, f"no records from {tp} before its end {ends[tp]}"
                records += [(r.key, r.value, dict(r.headers)) for r in batch[tp]]
        return records
    finally:
        await consumer.stop()


def _requests(broker: EmbeddedBroker, catalogue: TopicCatalogue) -> list[Record]:
    """What reached the requests topic, as (key, value), in value order."""
    return _by_value(asyncio.run(_read_all(broker.bootstrap, catalogue.requests.name)))


def _by_value(records: list[Record]) -> list[Record]:
    return sorted(records, key=lambda kv: kv[1])


def _offsets_listed(out: str) -> list[int]:
    return [int(line.split()[0]) for line in out.splitlines()[1:]]


def test_list_reads_to_the_end_and_stops(
    letters: list[DeadLetter], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "list"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == [
        "offset",
        "dead_lettered_at",
        "stage",
        "code",
        "request_id",
        "tenant",
        "bytes",
    ]
    assert _offsets_listed(out) == [0, 1, 2, 3, 4]
    assert lines[1].split() == [
        "0",
        "2025-03-01T12:00:00+00:00",
        "validate",
        "invalid_request",
        "r-types",
        "acme",
        str(len(BAD_TYPES)),
    ]
    assert lines[3].split()[3:] == ["message_too_large", "r-big", "acme", "5000000"]
    assert lines[4].split()[2:] == ["validate", "invalid_request", "-", "-", str(len(NOT_JSON))]
    assert lines[5].split()[2:5] == ["dispatch", "provider_unavailable", "r-dispatch"]
    assert err == "skipped records that are not dead letters at offsets [5]\n"


def test_list_json_is_the_letter_with_its_offset(
    letters: list[DeadLetter], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "list", "--json"]) == 0
    rows = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row.pop("offset") for row in rows] == [0, 1, 2, 3, 4]
    assert [DeadLetter.model_validate(row) for row in rows] == letters
    assert rows[0]["payload"] == BAD_TYPES.decode()


@pytest.mark.parametrize(
    ("options", "offsets"),
    [
        (["--code", "invalid_request"], [0, 3]),
        (["--stage", "dispatch"], [4]),
        (["--stage", "validate", "--code", "unknown_tenant"], [1]),
        (["--limit", "2"], [0, 1]),
        (["--code", "invalid_request", "--limit", "1"], [0]),
        (["--code", "no_such_code"], []),
    ],
)
def test_list_filters(
    letters: list[DeadLetter],
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    offsets: list[int],
) -> None:
    assert main(["dlq", "list", *options]) == 0
    assert _offsets_listed(capsys.readouterr().out) == offsets


def test_list_of_an_empty_topic_ends(
    broker: EmbeddedBroker, catalogue: TopicCatalogue, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(ensure_topics(broker.bootstrap, [catalogue.dead_letter]))
    assert main(["dlq", "list"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1
    assert err == ""


def test_missing_topic_is_an_error_and_is_not_created(
    broker: EmbeddedBroker, catalogue: TopicCatalogue, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "list"]) == 1
    assert capsys.readouterr().err == (
        f"switchyard: dead-letter topic {catalogue.dead_letter.name!r} does not exist: "
        "run `switchyard topics create`\n"
    )

    async def topics() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            return list(await admin.list_topics())
        finally:
            await admin.close()

    assert catalogue.dead_letter.name not in asyncio.run(topics())


def test_replay_by_offset_sends_payloads_keyed_by_tenant(
    broker: EmbeddedBroker,
    catalogue: TopicCatalogue,
    letters: list[DeadLetter],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["dlq", "replay", "--offset", "0", "--offset", "3"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines() == [
        f"replayed offset 0 (request_id r-types, tenant acme, {len(BAD_TYPES)} bytes) "
        f"to {catalogue.requests.name}",
        f"replayed offset 3 (request_id -, tenant -, {len(NOT_JSON)} bytes) "
        f"to {catalogue.requests.name}",
        "selected 2, replayed 2, refused 0",
    ]
    assert _requests(broker, catalogue) == _by_value([(b"acme", BAD_TYPES), (None, NOT_JSON)])


def test_replay_by_code_and_by_request_id(
    broker: EmbeddedBroker,
    catalogue: TopicCatalogue,
    letters: list[DeadLetter],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["dlq", "replay", "--code", "unknown_tenant"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "selected 1, replayed 1, refused 0"
    assert _requests(broker, catalogue) == [(b"nobody", NOBODY)]

    assert main(["dlq", "replay", "--request-id", "r-dispatch"]) == 0
    assert _requests(broker, catalogue) == _by_value([(b"globex", DISPATCH), (b"nobody", NOBODY)])


def test_truncated_letters_are_refused(
    broker: EmbeddedBroker,
    catalogue: TopicCatalogue,
    letters: list[DeadLetter],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["dlq", "replay", "--code", "message_too_large"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == ["selected 1, replayed 0, refused 1"]
    truncated = len(letters[2].payload)
    assert err == (
        f"refused offset 2 (request_id r-big): payload was truncated to {truncated} "
        "of 5000000 bytes, the original is lost\n"
    )
    assert _requests(broker, catalogue) == []

    # The rest of a mixed selection is still sent; the exit code reports the refusal.
    assert main(["dlq", "replay", "--all"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "selected 5, replayed 4, refused 1"
    assert err.startswith("refused offset 2 ")
    assert _requests(broker, catalogue) == _by_value(
        [(b"acme", BAD_TYPES), (b"nobody", NOBODY), (None, NOT_JSON), (b"globex", DISPATCH)]
    )


def test_dry_run_sends_nothing(
    broker: EmbeddedBroker,
    catalogue: TopicCatalogue,
    letters: list[DeadLetter],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["dlq", "replay", "--code", "invalid_request", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in out[:-1]] == [
        "would replay offset 0",
        "would replay offset 3",
    ]
    assert out[-1] == "selected 2, would replay 2, refused 0 (dry run: nothing sent)"
    assert _requests(broker, catalogue) == []


def test_selection_without_matches_fails(
    broker: EmbeddedBroker,
    catalogue: TopicCatalogue,
    letters: list[DeadLetter],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["dlq", "replay", "--code", "no_such_code"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "switchyard: no dead letter matches the selection; `switchyard dlq list` shows them\n"
    )

    # Offsets named but absent are reported; the ones found are still sent.
    assert main(["dlq", "replay", "--offset", "1", "--offset", "99", "--offset", "5"]) == 1
    out, err = capsys.readouterr()
    assert err == "not found: offset 99\nnot found: offset 5\n"
    assert out.splitlines()[-1] == "selected 1, replayed 1, refused 0"
    assert _requests(broker, catalogue) == [(b"nobody", NOBODY)]


def test_replay_needs_a_selection(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["dlq", "replay"])
    assert caught.value.code == 2
    assert "one of the arguments --offset --request-id --code --all is required" in (
        capsys.readouterr().err
    )


def test_letters_kept_as_size_and_hash_or_redacted_are_refused_with_the_policy_named(
    broker: EmbeddedBroker, catalogue: TopicCatalogue, capsys: pytest.CaptureFixture[str]
) -> None:
    fields: dict[str, Any] = {
        "error": ErrorInfo(code="invalid_request", message="bad"),
        "stage": "validate",
        "source_topic": "requests",
        "source_partition": 0,
        "source_offset": 1,
        "dead_lettered_at": AT,
    }
    hashed = DeadLetter.of_payload(
        NOBODY, 1000, "hash", request_id="r-h", tenant="globex", **fields
    )
    full = DeadLetter.of_payload(BAD_TYPES, 1000, "full", request_id="r-f", tenant="acme", **fields)
    redacted = DeadLetter.of_payload(
        NOBODY, 1000, "redacted", str.upper, request_id="r-r", tenant="globex", **fields
    )

    async def write() -> None:
        await ensure_topics(broker.bootstrap, [catalogue.requests, catalogue.dead_letter])
        producer = producer_for(broker.bootstrap, 1_048_576)
        await producer.start()
        try:
            for letter in (hashed, full, redacted):
                await producer.send_and_wait(catalogue.dead_letter.name, dumps(letter))
        finally:
            await producer.stop()

    asyncio.run(write())
    assert main(["dlq", "replay", "--all"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "selected 3, replayed 1, refused 2"
    assert err == (
        f"refused offset 0 (request_id r-h): only the size ({len(NOBODY)} bytes) and SHA-256 "
        "of the payload were kept, by the tenant's dead_letter_payload policy "
        "(set it to full to replay)\n"
        "refused offset 2 (request_id r-r): the payload was kept with its secrets and "
        "personal data replaced, by the tenant's dead_letter_payload policy "
        "(set it to full to replay)\n"
    )
    assert _requests(broker, catalogue) == [(b"acme", BAD_TYPES)]


def test_replayed_jobs_of_a_signed_tenant_are_signed_with_its_key(
    broker: EmbeddedBroker, catalogue: TopicCatalogue, letters: list[DeadLetter]
) -> None:
    assert main(["dlq", "replay", "--offset", "0", "--offset", "3"]) == 0
    sent = asyncio.run(_read_with_headers(broker.bootstrap, catalogue.requests.name))
    by_key = {key: (value, headers) for key, value, headers in sent}
    value, headers = by_key[b"acme"]
    config = sample_config()
    now = datetime.now(UTC)
    assert verify(value, headers, config, Keyring(config), now) == "acme"
    assert by_key[None][1] == {}  # no tenant named: nothing to sign as

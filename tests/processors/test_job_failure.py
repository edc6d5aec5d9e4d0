"""A dispatch job whose handling raised: answered, settled to zero, dead-lettered."""

from datetime import UTC, datetime

import orjson

from processors.job_failure import failed_job
from schemas.codec import dumps
from schemas.dead_letter import DeadLetter
from schemas.messages import InferenceReply
from schemas.settlement import SpendSettlement
from tests.helpers import dispatch_job, sample_config

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SOURCE = ("switchyard.dispatch", 5, 77)


def test_a_failed_job_is_answered_settled_and_dead_lettered() -> None:
    job = dispatch_job(NOW, estimated_cost_usd=0.02, reply_to="switchyard.replies.acme")
    raw = dumps(job)
    outputs = failed_job(job, raw, KeyError("secret prompt text"), SOURCE, sample_config(), NOW)
    assert [o.kind for o in outputs] == ["reply", "telemetry", "settlement", "dead_letter"]
    reply, settlement, letter = outputs[0].message, outputs[2].message, outputs[3].message
    assert isinstance(reply, InferenceReply) and reply.error is not None
    assert (reply.status, reply.error.code) == ("rejected", "unprocessable")
    assert outputs[0].topic == "switchyard.replies.acme"
    assert isinstance(settlement, SpendSettlement)
    assert (settlement.reserved_usd, settlement.actual_usd) == (0.02, 0.0)
    assert isinstance(letter, DeadLetter)
    assert (letter.stage, letter.source_offset, letter.error.code) == (
        "dispatch",
        77,
        "unprocessable",
    )
    assert orjson.loads(letter.payload) == orjson.loads(dumps(job.request))  # replayable
    assert all(
        "secret" not in dumps(o.message).decode() for o in outputs if o.kind != "dead_letter"
    )


def test_a_job_that_cannot_be_reserialised_keeps_its_raw_text_cut_to_the_limit() -> None:
    deep: object = 1
    for _ in range(300):
        deep = {"k": deep}
    job = dispatch_job(NOW, response_format={"schema": deep})
    raw = b"x" * 3_000_000
    config = sample_config()
    outputs = failed_job(job, raw, TypeError("Recursion limit reached"), SOURCE, config, NOW)
    letter = outputs[-1].message
    assert isinstance(letter, DeadLetter)
    assert letter.payload_truncated and letter.payload_bytes == 3_000_000
    assert len(letter.payload) == config.limits.max_message_bytes
    for output in outputs:
        dumps(output.message)  # every output, the letter included, serialises

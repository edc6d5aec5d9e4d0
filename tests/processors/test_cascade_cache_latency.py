"""Cascade ladders and answer checks, the response cache's keys, learned latency."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from processors.cache import cache_key, entry_for, usable
from processors.cascade import check_answer
from processors.latency import LatencyBook, LatencyEstimate, ModelLatency
from processors.strategies import Cascade, StrategyInput
from schemas.cache import CachedAnswer
from schemas.config import CacheSettings, LatencySettings, ModelSpec
from schemas.decision import CandidateVerdict
from schemas.messages import ChatMessage, InferenceRequest, Usage
from schemas.plan import AnswerCheck
from tests.helpers import make_request, sample_config, verdict

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


LOCAL = verdict("local", 1.0, 0.5)
SMALL = verdict("small", 2.0, 0.75)
MEDIUM = verdict("medium", 5.0, 0.85)
LARGE = verdict("large", 10.0, 0.92)
LADDER = [LARGE, MEDIUM, SMALL, LOCAL]


def given(
    verdicts: list[CandidateVerdict] = LADDER, target: float = 0.8, max_fallbacks: int = 2
) -> StrategyInput:
    return StrategyInput(
        request=make_request(),
        text="hello there",
        task="chat",
        quality="balanced",
        target=target,
        verdicts=verdicts,
        max_fallbacks=max_fallbacks,
    )


def names(verdicts: list[CandidateVerdict]) -> list[str]:
    return [v.model for v in verdicts]


# --- cascade ladder --------------------------------------------------------------


def test_two_rungs_try_the_cheapest_model_then_cheapest_capable() -> None:
    choice = Cascade(max_rungs=2).choose(given())
    assert choice is not None
    assert Cascade.name == "cascade"
    assert choice.cascade == ["local", "medium"]
    assert choice.chosen.model == "local"
    # the ladder above the first rung, then the top rung's own fallbacks
    assert names(choice.fallbacks) == ["medium", "large", "small"]
    assert choice.reason == (
        "cascade local -> medium; top rung: cheapest of 2 eligible models with quality >= 0.80"
    )


def test_more_rungs_climb_through_every_cheaper_model() -> None:
    choice = Cascade(max_rungs=3).choose(given())
    assert choice is not None
    assert choice.cascade == ["local", "small", "medium"]
    assert names(choice.fallbacks) == ["small", "medium", "large"]


def test_max_rungs_beyond_the_catalogue_uses_all_cheaper_models() -> None:
    choice = Cascade(max_rungs=10).choose(given(target=0.9))
    assert choice is not None
    assert choice.cascade == ["local", "small", "medium", "large"]


def test_fallbacks_keep_the_ladder_and_at_most_max_fallbacks_more() -> None:
    choice = Cascade(max_rungs=2).choose(given(max_fallbacks=0))
    assert choice is not None
    assert names(choice.fallbacks) == ["medium"]
    one = Cascade(max_rungs=2).choose(given(max_fallbacks=1))
    assert one is not None
    assert names(one.fallbacks) == ["medium", "large"]


def test_ineligible_cheaper_models_are_not_rungs() -> None:
    verdicts = [LARGE, MEDIUM, SMALL, verdict("local", 1.0, 0.5, eligible=False)]
    choice = Cascade(max_rungs=2).choose(given(verdicts))
    assert choice is not None
    assert choice.cascade == ["small", "medium"]
    assert "local" not in names(choice.fallbacks)


def test_equally_cheap_rungs_prefer_the_better_model() -> None:
    twin = verdict("twin", 1.0, 0.6)
    choice = Cascade(max_rungs=2).choose(given([*LADDER, twin]))
    assert choice is not None
    assert choice.cascade == ["twin", "medium"]


def test_nothing_cheaper_than_the_top_rung_is_a_plain_route() -> None:
    choice = Cascade(max_rungs=3).choose(given(target=0.4))
    assert choice is not None
    assert choice.chosen.model == "local"
    assert choice.cascade == []
    assert names(choice.fallbacks) == ["small", "medium"]
    assert choice.reason == (
        "cheapest of 4 eligible models with quality >= 0.40; nothing cheaper to try first"
    )


def test_cascade_with_nothing_eligible_chooses_nothing() -> None:
    assert Cascade(2).choose(given([verdict("a", 1, 0.9, eligible=False)])) is None


# --- answer checks ---------------------------------------------------------------


def json_request(schema: dict[str, Any] | None = None) -> InferenceRequest:
    if schema is None:
        return make_request(response_format={"type": "json_object"})
    return make_request(
        response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}
    )


ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "integer"}},
    "required": ["answer"],
}


def test_regex_check_requires_a_match() -> None:
    check = AnswerCheck(kind="regex", pattern=r"^\d+$")
    passed = check_answer(check, make_request(), "42")
    assert (passed.passed, passed.detail) == (True, "matches pattern")
    failed = check_answer(check, make_request(), "forty-two")
    assert (failed.passed, failed.detail) == (False, "does not match pattern")


def test_regex_check_without_pattern_requires_some_text() -> None:
    check = AnswerCheck(kind="regex")
    assert check_answer(check, make_request(), "x").passed
    assert not check_answer(check, make_request(), "  \n\t ").passed
    assert not check_answer(check, make_request(), "").passed


def test_regex_check_searches_anywhere_in_the_answer() -> None:
    check = AnswerCheck(kind="regex", pattern=r"\bapproved\b")
    assert check_answer(check, make_request(), "the claim is approved, thanks").passed
    assert not check_answer(check, make_request(), "unapproved").passed


def test_logprob_check_compares_the_mean_with_the_threshold() -> None:
    check = AnswerCheck(kind="logprob", min_mean_logprob=-0.5)
    good = check_answer(check, make_request(), "yes", [-0.1, -0.3])
    assert (good.passed, good.detail) == (True, "mean logprob -0.200 vs -0.500")
    bad = check_answer(check, make_request(), "yes", [-1.0, -0.2])
    assert (bad.passed, bad.detail) == (False, "mean logprob -0.600 vs -0.500")
    edge = check_answer(check, make_request(), "yes", [-0.5, -0.5])
    assert edge.passed


@pytest.mark.parametrize("logprobs", [None, []])
def test_logprob_check_fails_without_logprobs(logprobs: list[float] | None) -> None:
    result = check_answer(AnswerCheck(kind="logprob"), make_request(), "yes", logprobs)
    assert (result.passed, result.detail) == (False, "no log-probabilities in the answer")


def test_json_check_is_the_default() -> None:
    assert AnswerCheck().kind == "json_schema"


@pytest.mark.parametrize("text", ['{"a": 1}', "[1, 2]", '  {"a": 1}\n', '"just a string"'])
def test_json_check_without_schema_accepts_any_json(text: str) -> None:
    result = check_answer(AnswerCheck(), make_request(), text)
    assert (result.passed, result.detail) == (True, "valid JSON")


@pytest.mark.parametrize("text", ["not json", '{"a": 1', "", 'Sure! {"a": 1}'])
def test_json_check_rejects_what_is_not_json(text: str) -> None:
    result = check_answer(AnswerCheck(), make_request(), text)
    assert (result.passed, result.detail) == (False, "answer is not JSON")


@pytest.mark.parametrize(
    "text",
    ['```json\n{"answer": 3}\n```', '```\n{"answer": 3}\n```', '\n```json {"answer": 3}```\n'],
)
def test_json_check_accepts_fenced_json(text: str) -> None:
    assert check_answer(AnswerCheck(), json_request(ANSWER_SCHEMA), text).passed


def test_json_object_response_format_has_no_schema_to_check() -> None:
    result = check_answer(AnswerCheck(), json_request(), '{"anything": true}')
    assert (result.passed, result.detail) == (True, "valid JSON")


def test_json_check_validates_against_the_requests_schema() -> None:
    ok = check_answer(AnswerCheck(), json_request(ANSWER_SCHEMA), '{"answer": 42}')
    assert (ok.passed, ok.detail) == (True, "matches the request's JSON schema")


def test_json_check_reports_where_the_schema_is_violated() -> None:
    wrong_type = check_answer(AnswerCheck(), json_request(ANSWER_SCHEMA), '{"answer": "42"}')
    assert (wrong_type.passed, wrong_type.detail) == (
        False,
        "schema violation at ['answer']: type",
    )
    missing = check_answer(AnswerCheck(), json_request(ANSWER_SCHEMA), '{"other": 1}')
    assert (missing.passed, missing.detail) == (False, "schema violation at []: required")


def test_json_check_with_an_unusable_schema_only_requires_json() -> None:
    broken = json_request({"type": "no-such-type"})
    result = check_answer(AnswerCheck(), broken, '{"answer": 1}')
    assert (result.passed, result.detail) == (True, "valid JSON (request schema unusable)")
    assert not check_answer(AnswerCheck(), broken, "nope").passed


def test_json_schema_not_an_object_is_ignored() -> None:
    odd = make_request(response_format={"type": "json_schema", "json_schema": "not-a-dict"})
    assert check_answer(AnswerCheck(), odd, "[]").detail == "valid JSON"


def test_other_checks_ignore_the_json_schema() -> None:
    regex = AnswerCheck(kind="regex", pattern="ok")
    assert check_answer(regex, json_request(ANSWER_SCHEMA), "ok, not json").passed


# --- latency ---------------------------------------------------------------------

SETTINGS = LatencySettings(min_samples=3, window=50, ewma_alpha=0.5, max_error_rate=0.5)


def spec(name: str, typical_latency_ms: float) -> ModelSpec:
    return ModelSpec(
        name=name,
        provider="sim",
        base_url="http://127.0.0.1:1/v1",  # type: ignore[arg-type]
        price_in_per_mtok=1,
        price_out_per_mtok=1,
        context_window=1000,
        region="us",
        typical_latency_ms=typical_latency_ms,
    )


def test_ewma_starts_at_the_first_sample_then_moves_by_alpha() -> None:
    state = ModelLatency(SETTINGS)
    state.record("ok", 100)
    assert state.ewma_ms == 100
    state.record("ok", 300)
    assert state.ewma_ms == pytest.approx(200)  # 0.5 * 100 + 0.5 * 300
    state.record("ok", 400)
    assert state.ewma_ms == pytest.approx(300)
    assert state.samples == 3


def test_ewma_weighs_the_new_sample_by_alpha() -> None:
    state = ModelLatency(LatencySettings(ewma_alpha=0.1))
    state.record("ok", 100)
    state.record("ok", 1100)
    assert state.ewma_ms == pytest.approx(200)  # 0.9 * 100 + 0.1 * 1100
    state.record("error", 0)
    assert state.error_rate == pytest.approx(0.1)


def test_error_rate_is_an_ewma_of_failures() -> None:
    state = ModelLatency(SETTINGS)
    state.record("error", 10)
    assert state.error_rate == 1.0
    state.record("ok", 100)
    assert state.error_rate == pytest.approx(0.5)
    state.record("ok", 100)
    assert state.error_rate == pytest.approx(0.25)
    state.record("unavailable", 5)
    assert state.error_rate == pytest.approx(0.625)


def test_first_success_starts_the_error_rate_at_zero() -> None:
    state = ModelLatency(SETTINGS)
    state.record("ok", 100)
    assert state.error_rate == 0.0


@pytest.mark.parametrize("outcome", ["error", "unavailable"])
def test_failures_without_an_answer_do_not_move_latency(outcome: str) -> None:
    state = ModelLatency(SETTINGS)
    state.record("ok", 100)
    state.record(outcome, 5)
    assert state.ewma_ms == 100
    assert list(state.recent) == [100]
    assert state.samples == 2


def test_timeouts_are_failures_and_count_as_slow_calls() -> None:
    state = ModelLatency(SETTINGS)
    state.record("ok", 100)
    state.record("timeout", 900)
    assert state.error_rate == pytest.approx(0.5)
    assert state.ewma_ms == pytest.approx(500)
    assert list(state.recent) == [100, 900]


def test_rejected_answers_count_as_calls_but_not_failures() -> None:
    state = ModelLatency(SETTINGS)
    state.record("rejected", 300)
    assert state.error_rate == 0.0
    assert state.ewma_ms == 300


@pytest.mark.parametrize("outcome", ["circuit_open", "throttled"])
def test_skipped_calls_are_ignored(outcome: str) -> None:
    state = ModelLatency(SETTINGS)
    state.record("ok", 100)
    state.record(outcome, 0)
    assert (state.samples, state.ewma_ms, state.error_rate, list(state.recent)) == (
        1,
        100,
        0.0,
        [100],
    )


def test_p95_is_taken_over_the_recent_window() -> None:
    state = ModelLatency(SETTINGS)
    assert state.p95_ms() is None
    for ms in range(1, 101):  # only 51..100 stay in a window of 50
        state.record("ok", float(ms))
    assert len(state.recent) == 50
    assert min(state.recent) == 51
    assert state.p95_ms() == 98  # the 48th of 50 (nearest rank)


def test_old_slow_calls_leave_the_window() -> None:
    state = ModelLatency(SETTINGS)
    for _ in range(10):
        state.record("ok", 5000)
    for _ in range(50):
        state.record("ok", 100)
    assert state.p95_ms() == 100


def test_p95_of_one_sample_is_that_sample() -> None:
    state = ModelLatency(SETTINGS)
    state.record("ok", 42)
    assert state.p95_ms() == 42


def test_book_uses_typical_latency_until_min_samples() -> None:
    book = LatencyBook([spec("fast", 300), spec("slow", 2000)], SETTINGS)
    book.record("fast", "ok", 1000)
    book.record("fast", "error", 10)
    early = book.estimates()["fast"]
    assert (early.ewma_ms, early.p95_ms) == (300, 300)
    assert early.samples == 2
    assert early.observed
    assert early.error_rate == pytest.approx(0.5)
    assert book.estimates()["slow"] == LatencyEstimate(2000, 2000, 0.0, 0)
    assert not book.estimates()["slow"].observed


def test_book_uses_observed_figures_from_min_samples_on() -> None:
    book = LatencyBook([spec("fast", 300)], SETTINGS)
    for ms in (100, 300, 500):
        book.record("fast", "ok", ms)
    estimate = book.estimates()["fast"]
    assert estimate.samples == 3
    assert estimate.ewma_ms == pytest.approx(350)  # 100 -> 200 -> 350
    assert estimate.p95_ms == 500
    assert estimate.error_rate == 0.0


def test_book_falls_back_to_typical_when_no_call_returned_a_latency() -> None:
    book = LatencyBook([spec("fast", 300)], SETTINGS)
    for _ in range(5):
        book.record("fast", "error", 1)
    estimate = book.estimates()["fast"]
    assert (estimate.ewma_ms, estimate.p95_ms, estimate.samples) == (300, 300, 5)
    assert estimate.error_rate == 1.0


def test_skipped_calls_do_not_count_towards_min_samples() -> None:
    book = LatencyBook([spec("fast", 300)], SETTINGS)
    book.record("fast", "ok", 1000)
    for _ in range(5):
        book.record("fast", "circuit_open", 0)
        book.record("fast", "throttled", 0)
    assert book.estimates()["fast"].p95_ms == 300


def test_book_ignores_unknown_models() -> None:
    book = LatencyBook([spec("fast", 300)], SETTINGS)
    book.record("ghost", "ok", 100)
    assert set(book.estimates()) == {"fast"}


# --- cache keys ------------------------------------------------------------------


def with_messages(*texts: str, **fields: Any) -> InferenceRequest:
    messages = [ChatMessage(role="user", content=t) for t in texts]
    return make_request(messages=messages, **fields)


def test_whitespace_only_differences_share_a_key() -> None:
    key = cache_key(with_messages("hello world"))
    assert cache_key(with_messages("  hello   world\n")) == key
    assert cache_key(with_messages("hello\n\tworld")) == key


def test_key_is_a_digest_without_the_prompt() -> None:
    key = cache_key(with_messages("a very secret prompt"))
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert "secret" not in key


def test_other_requests_with_the_same_content_share_a_key() -> None:
    a = with_messages("hi", request_id="r-1", user="u1", tags={"x": "1"}, reply_to="replies")
    b = with_messages("hi", request_id="r-2", user="u2", submitted_at=NOW)
    assert cache_key(a) == cache_key(b)


def test_tenants_never_share_a_key() -> None:
    assert cache_key(with_messages("hi", tenant="acme")) != cache_key(
        with_messages("hi", tenant="globex")
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"temperature": 0.7},
        {"max_tokens": 100},
        {"top_p": 0.5},
        {"stop": ["\n"]},
        {"seed": 3},
        {"response_format": {"type": "json_object"}},
        {"task": "code"},
        {"quality": "premium"},
        {"quality_target": 0.9},
        {"model": "sim-large"},
        {"data_classification": "restricted"},
    ],
)
def test_generation_parameters_change_the_key(fields: dict[str, Any]) -> None:
    assert cache_key(with_messages("hi", **fields)) != cache_key(with_messages("hi"))


def test_parameter_values_matter_not_just_presence() -> None:
    assert cache_key(with_messages("hi", temperature=0.0)) != cache_key(
        with_messages("hi", temperature=1.0)
    )
    assert cache_key(with_messages("hi", max_tokens=10)) != cache_key(
        with_messages("hi", max_tokens=11)
    )


def test_response_format_key_order_does_not_matter() -> None:
    first = {"type": "json_schema", "json_schema": {"name": "s", "schema": ANSWER_SCHEMA}}
    second = {"json_schema": {"schema": ANSWER_SCHEMA, "name": "s"}, "type": "json_schema"}
    assert cache_key(with_messages("hi", response_format=first)) == cache_key(
        with_messages("hi", response_format=second)
    )


def test_messages_change_the_key() -> None:
    base = cache_key(with_messages("hello world"))
    assert cache_key(with_messages("hello there")) != base
    assert cache_key(with_messages("helloworld")) != base
    assert cache_key(with_messages("hello", "world")) != base
    system = make_request(messages=[ChatMessage(role="system", content="hello world")])
    assert cache_key(system) != base


def answer(tenant: str = "acme", expires_at: datetime = NOW + timedelta(minutes=5)) -> CachedAnswer:
    return CachedAnswer(
        key="k",
        tenant=tenant,
        message=ChatMessage(role="assistant", content="hi"),
        model="sim-small",
        provider="sim",
        source_request_id="r-0",
        stored_at=NOW - timedelta(minutes=1),
        expires_at=expires_at,
    )


def test_fresh_entry_of_the_same_tenant_is_usable() -> None:
    entry = answer()
    assert usable(entry, "acme", NOW) is entry


def test_no_entry_is_not_usable() -> None:
    assert usable(None, "acme", NOW) is None


def test_entry_of_another_tenant_is_not_usable() -> None:
    assert usable(answer(tenant="globex"), "acme", NOW) is None


def test_expired_entry_is_not_usable() -> None:
    assert usable(answer(expires_at=NOW), "acme", NOW) is None
    assert usable(answer(expires_at=NOW - timedelta(seconds=1)), "acme", NOW) is None
    assert usable(answer(expires_at=NOW + timedelta(seconds=1)), "acme", NOW) is not None


def test_entry_for_stores_the_answer_under_the_requests_key_for_the_ttl() -> None:
    request = with_messages("hello", request_id="r-9", tenant="globex")
    message = ChatMessage(role="assistant", content="hi!")
    usage = Usage(input_tokens=3, output_tokens=2)
    entry = entry_for(
        request, CacheSettings(enabled=True, ttl_s=90), message, usage, "sim-small", "sim", NOW
    )
    assert entry.key == cache_key(request)
    assert entry.tenant == "globex"
    assert entry.message == message
    assert entry.usage == usage
    assert (entry.model, entry.provider) == ("sim-small", "sim")
    assert entry.source_request_id == "r-9"
    assert entry.stored_at == NOW
    assert entry.expires_at == NOW + timedelta(seconds=90)
    assert usable(entry, "globex", NOW + timedelta(seconds=89)) is entry
    assert usable(entry, "globex", NOW + timedelta(seconds=90)) is None


def test_an_error_rate_with_no_call_since_is_forgotten() -> None:
    settings = LatencySettings(min_samples=1, error_memory_s=10)
    book = LatencyBook([sample_config().models[0]], settings)
    name = sample_config().models[0].name
    for t in range(5):
        book.record(name, "error", 100, at=float(t))
    assert book.estimates(now=10.0)[name].error_rate == 1.0  # 6 s since the last failure
    assert book.estimates(now=14.5)[name].error_rate == 0.0  # 10.5 s: traffic may return
    book.record(name, "error", 100, at=20.0)
    assert book.estimates(now=21.0)[name].error_rate == 1.0  # still failing: demoted again

import statistics

import pytest

from simulator import FakeModelProfile, OutageWindow, SimulatorSettings
from simulator.behaviour import Completion, Failure, Prompt, TokenBucket, content_hash, decide
from tests.simulator.serving import make_prompt


def settings_with(seed: int = 7, scale: float = 1.0, **profile: object) -> SimulatorSettings:
    return SimulatorSettings(
        seed=seed, latency_scale=scale, models={"m": FakeModelProfile.model_validate(profile)}
    )


def test_same_inputs_same_outcome_and_seed_changes_it() -> None:
    prompt = make_prompt("tell me about kafka")
    first = decide(settings_with(), "m", prompt, 0, 1.0)
    assert first == decide(settings_with(), "m", prompt, 0, 1.0)
    other_seed = decide(settings_with(seed=8), "m", prompt, 0, 1.0)
    next_try = decide(settings_with(), "m", prompt, 1, 1.0)
    assert isinstance(first, Completion)
    assert isinstance(other_seed, Completion) and isinstance(next_try, Completion)
    assert other_seed.latency_ms != first.latency_ms
    assert other_seed.request_id != first.request_id
    assert next_try.latency_ms != first.latency_ms
    assert first.request_id.startswith("chatcmpl-")


def test_error_rate_is_respected_over_many_draws() -> None:
    settings = settings_with(error_rate=0.2)
    prompt = make_prompt()
    outcomes = [decide(settings, "m", prompt, i, 0.0) for i in range(2000)]
    failures = [o for o in outcomes if isinstance(o, Failure)]
    assert 0.17 < len(failures) / 2000 < 0.23
    assert {f.status for f in failures} == {500}


def test_latency_is_lognormal_around_the_median_and_scaled() -> None:
    prompt = make_prompt()
    draws = [decide(settings_with(latency_ms=100), "m", prompt, i, 0.0) for i in range(2000)]
    median = statistics.median(o.latency_ms for o in draws)
    assert 90 < median < 110
    assert max(o.latency_ms for o in draws) > 150  # sigma 0.3 spreads it
    scaled = decide(settings_with(latency_ms=100, scale=0.01), "m", prompt, 5, 0.0)
    assert scaled.latency_ms == pytest.approx(draws[5].latency_ms * 0.01)
    constant = decide(settings_with(latency_ms=100, latency_sigma=0), "m", prompt, 5, 0.0)
    assert constant.latency_ms == 100


def test_turning_errors_on_does_not_reshuffle_latencies() -> None:
    prompt = make_prompt()
    calm = [decide(settings_with(), "m", prompt, i, 0.0) for i in range(50)]
    faulty = [decide(settings_with(error_rate=0.5), "m", prompt, i, 0.0) for i in range(50)]
    assert [o.latency_ms for o in calm] == [o.latency_ms for o in faulty]


def test_outage_window_gives_503_only_inside() -> None:
    settings = settings_with(outages=[OutageWindow(start_s=10, end_s=20)])
    prompt = make_prompt()
    statuses = {t: decide(settings, "m", prompt, 0, t) for t in (9.99, 10.0, 15.0, 19.99, 20.0)}
    assert [isinstance(o, Failure) and o.status == 503 for o in statuses.values()] == [
        False, True, True, True, False,
    ]  # fmt: skip
    forced = decide(settings_with(), "m", prompt, 0, 0.0, down=True)
    assert isinstance(forced, Failure) and forced.status == 503


@pytest.mark.parametrize(("wait", "header"), [(0.1, 1), (1.0, 1), (2.2, 3)])
def test_throttled_request_is_429_with_whole_second_retry_after(wait: float, header: int) -> None:
    outcome = decide(settings_with(rate_limit_rps=1), "m", make_prompt(), 0, 0.0, throttled_s=wait)
    assert isinstance(outcome, Failure)
    assert (outcome.status, outcome.code, outcome.retry_after_s) == (
        429, "rate_limit_exceeded", header,
    )  # fmt: skip


def test_token_bucket_refuses_when_empty_and_refills() -> None:
    bucket = TokenBucket(2, now=100.0)
    assert bucket.take(100.0) is None
    assert bucket.take(100.0) is None
    assert bucket.take(100.0) == pytest.approx(0.5)
    assert bucket.take(100.25) == pytest.approx(0.25)
    assert bucket.take(100.5) is None
    assert bucket.take(90.0) is not None  # a clock stepping back adds nothing


def test_prompt_over_context_window_is_400() -> None:
    prompt = make_prompt("x" * 400)  # 400 // 4 + 1 = 101 tokens
    assert prompt.prompt_tokens == 101
    too_long = decide(settings_with(context_window=100), "m", prompt, 0, 0.0)
    assert isinstance(too_long, Failure)
    assert (too_long.status, too_long.code) == (400, "context_length_exceeded")
    assert "100 tokens" in too_long.message and "101 tokens" in too_long.message
    assert isinstance(decide(settings_with(context_window=101), "m", prompt, 0, 0.0), Completion)


def test_completion_text_usage_and_length_cap() -> None:
    prompt = Prompt(("be brief", "kafka partitions"), "kafka partitions", content_hash(1), None)
    done = decide(settings_with(output_tokens=40), "m", prompt, 0, 0.0)
    assert isinstance(done, Completion)
    assert done.text.startswith("[m] ")
    assert done.finish_reason == "stop"
    assert done.usage.prompt_tokens == len("be brief" + "kafka partitions") // 4 + 2
    assert done.usage.completion_tokens == len(done.text) // 4
    assert 30 <= done.usage.completion_tokens <= 50
    capped = decide(settings_with(), "m", make_prompt("kafka", max_tokens=3), 0, 0.0)
    assert isinstance(capped, Completion)
    assert capped.finish_reason == "length"
    assert 1 <= capped.usage.completion_tokens <= 3 and len(capped.text) <= 12


def test_content_hash_is_stable_and_key_order_free() -> None:
    assert content_hash({"a": 1, "b": [2]}) == content_hash({"b": [2], "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": 2})

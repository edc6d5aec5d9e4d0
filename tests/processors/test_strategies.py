"""Strategies behind one interface: cheapest-capable, rules, learned; demotion and shadows."""

import dataclasses
import zlib
from collections.abc import Mapping

import pytest

from processors.latency import LatencyEstimate
from processors.strategies import (
    CheapestCapable,
    Choice,
    Learned,
    Rules,
    StrategyInput,
    cheapest_capable,
    demote_unhealthy,
    shadow_model,
    uniform_share,
)
from schemas.decision import CandidateVerdict
from schemas.messages import Quality
from tests.helpers import FakePredictor, make_request, verdict

# Cheapest first; only "mid" and "top" reach a 0.7 target on configured quality.
CHEAP = verdict("cheap", 1.0, 0.5)
MID = verdict("mid", 2.0, 0.8)
TOP = verdict("top", 5.0, 0.95)
CATALOGUE = [TOP, CHEAP, MID]


def given(
    verdicts: list[CandidateVerdict] = CATALOGUE,
    *,
    target: float = 0.7,
    task: str = "chat",
    quality: Quality = "balanced",
    max_fallbacks: int = 2,
    text: str = "hello there",
    chains: Mapping[str, list[str]] | None = None,
) -> StrategyInput:
    return StrategyInput(
        request=make_request(text),
        text=text,
        task=task,
        quality=quality,
        target=target,
        verdicts=verdicts,
        max_fallbacks=max_fallbacks,
        chains=chains or {},
    )


def names(verdicts: list[CandidateVerdict]) -> list[str]:
    return [v.model for v in verdicts]


def observed(error_rate: float, samples: int = 50) -> LatencyEstimate:
    return LatencyEstimate(ewma_ms=100, p95_ms=200, error_rate=error_rate, samples=samples)


# --- StrategyInput ---------------------------------------------------------------


def test_strategy_input_defaults_to_no_chains_and_no_latency() -> None:
    inp = given()
    assert inp.chains == {}
    assert inp.latency == {}


def test_strategy_input_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        given().target = 0.1  # type: ignore[misc]


# --- cheapest-capable ------------------------------------------------------------


def test_cheapest_capable_picks_cheapest_model_reaching_the_target() -> None:
    choice = CheapestCapable().choose(given())
    assert choice is not None
    assert choice.chosen.model == "mid"
    # capable ones first by cost, then the rest by quality
    assert names(choice.fallbacks) == ["top", "cheap"]
    assert choice.reason == "cheapest of 2 eligible models with quality >= 0.70"
    assert choice.cascade == []
    assert choice.predicted == {}


def test_cheapest_capable_is_the_route_function_with_the_inputs_fields() -> None:
    inp = given(target=0.9, max_fallbacks=1, chains={"top": ["cheap"]})
    assert CheapestCapable().choose(inp) == cheapest_capable(CATALOGUE, 0.9, 1, {"top": ["cheap"]})


def test_cheapest_capable_follows_the_chosen_models_chain() -> None:
    choice = CheapestCapable().choose(given(chains={"mid": ["cheap"]}))
    assert choice is not None
    assert names(choice.fallbacks) == ["cheap", "top"]


def test_cheapest_capable_with_nothing_eligible_chooses_nothing() -> None:
    inp = given([verdict("a", 1, 0.9, eligible=False)])
    assert CheapestCapable().choose(inp) is None


def test_cheapest_capable_has_its_config_name() -> None:
    assert CheapestCapable.name == "cheapest-capable"
    assert Rules.name == "rules"
    assert Learned.name == "learned"


# --- rules -----------------------------------------------------------------------


def test_rule_for_task_and_tier_chooses_first_listed_model() -> None:
    choice = Rules({"chat": {"balanced": ["top", "cheap"]}}).choose(given())
    assert choice is not None
    assert choice.chosen.model == "top"
    # the rest of the rule's list, then the other eligible models by cost
    assert names(choice.fallbacks) == ["cheap", "mid"]
    assert choice.reason == "rule chat/balanced: first eligible of ['top', 'cheap']"


def test_rule_skips_ineligible_listed_models() -> None:
    verdicts = [verdict("top", 5, 0.95, eligible=False), CHEAP, MID]
    choice = Rules({"chat": {"balanced": ["top", "cheap"]}}).choose(given(verdicts))
    assert choice is not None
    assert choice.chosen.model == "cheap"
    assert names(choice.fallbacks) == ["mid"]  # never the ineligible one


def test_rule_ignores_the_quality_target() -> None:
    # Rules are explicit: a listed model below the target is still chosen.
    choice = Rules({"chat": {"balanced": ["cheap"]}}).choose(given(target=0.9))
    assert choice is not None
    assert choice.chosen.model == "cheap"


def test_rule_fallbacks_are_capped_by_max_fallbacks() -> None:
    rules = Rules({"chat": {"balanced": ["top", "mid", "cheap"]}})
    choice = rules.choose(given(max_fallbacks=1))
    assert choice is not None
    assert names(choice.fallbacks) == ["mid"]
    none = rules.choose(given(max_fallbacks=0))
    assert none is not None
    assert none.fallbacks == []


def test_star_rule_applies_to_tasks_without_their_own_rule() -> None:
    rules = Rules({"*": {"balanced": ["top"]}, "code": {"balanced": ["cheap"]}})
    choice = rules.choose(given(task="math"))
    assert choice is not None
    assert choice.chosen.model == "top"
    assert choice.reason.startswith("rule */balanced:")
    coded = rules.choose(given(task="code"))
    assert coded is not None
    assert coded.chosen.model == "cheap"
    assert coded.reason.startswith("rule code/balanced:")


def test_rule_is_per_tier() -> None:
    rules = Rules({"chat": {"premium": ["top"], "economy": ["cheap"]}})
    premium = rules.choose(given(quality="premium"))
    economy = rules.choose(given(quality="economy"))
    assert premium is not None and premium.chosen.model == "top"
    assert economy is not None and economy.chosen.model == "cheap"


def test_star_rule_applies_when_the_task_has_no_rule_for_the_tier() -> None:
    rules = Rules({"*": {"balanced": ["top"]}, "chat": {"premium": ["cheap"]}})
    choice = rules.choose(given())
    assert choice is not None
    assert choice.chosen.model == "top"


def test_model_listed_twice_is_not_its_own_fallback() -> None:
    choice = Rules({"chat": {"balanced": ["top", "top", "cheap"]}}).choose(given())
    assert choice is not None
    assert choice.chosen.model == "top"
    assert "top" not in names(choice.fallbacks)


def test_no_rule_falls_back_to_cheapest_capable_and_says_so() -> None:
    choice = Rules({}).choose(given())
    assert choice is not None
    assert choice.chosen.model == "mid"
    assert choice.reason == (
        "no rule for chat/balanced; cheapest of 2 eligible models with quality >= 0.70"
    )


def test_rule_with_no_eligible_model_falls_back_to_cheapest_capable() -> None:
    verdicts = [verdict("top", 5, 0.95, eligible=False), CHEAP, MID]
    choice = Rules({"chat": {"balanced": ["top"]}}).choose(given(verdicts))
    assert choice is not None
    assert choice.chosen.model == "mid"
    assert choice.reason.startswith("no eligible model in the rule for chat/balanced; cheapest")


def test_rules_with_nothing_eligible_choose_nothing() -> None:
    verdicts = [verdict("top", 5, 0.95, eligible=False)]
    assert Rules({"chat": {"balanced": ["top"]}}).choose(given(verdicts)) is None
    assert Rules({}).choose(given(verdicts)) is None


# --- demote_unhealthy ------------------------------------------------------------


def choice_of(chosen: CandidateVerdict, *fallbacks: CandidateVerdict) -> Choice:
    return Choice(chosen, list(fallbacks), "original reason", predicted={"mid": 0.8})


def test_healthy_choice_is_kept_as_is() -> None:
    choice = choice_of(MID, TOP, CHEAP)
    assert demote_unhealthy(choice, {"mid": observed(0.1)}, 0.5) is choice


def test_sick_choice_goes_behind_its_first_healthy_fallback() -> None:
    choice = choice_of(MID, TOP, CHEAP)
    demoted = demote_unhealthy(choice, {"mid": observed(0.6), "top": observed(0.0)}, 0.5)
    assert demoted.chosen.model == "top"
    assert names(demoted.fallbacks) == ["mid", "cheap"]
    assert demoted.reason == "mid failing 60% of recent calls; top first (was: original reason)"
    assert demoted.predicted == {"mid": 0.8}
    assert demoted.cascade == []


def test_a_probe_job_keeps_the_sick_choice_first() -> None:
    choice = choice_of(MID, TOP, CHEAP)
    latency = {"mid": observed(0.9), "top": observed(0.0)}
    assert demote_unhealthy(choice, latency, 0.5, probe=True) is choice
    assert demote_unhealthy(choice, latency, 0.5, probe=False).chosen.model == "top"


def test_sick_fallbacks_are_skipped_when_promoting() -> None:
    choice = choice_of(MID, TOP, CHEAP)
    latency = {"mid": observed(0.9), "top": observed(0.7), "cheap": observed(0.1)}
    demoted = demote_unhealthy(choice, latency, 0.5)
    assert demoted.chosen.model == "cheap"
    assert names(demoted.fallbacks) == ["mid", "top"]


def test_sick_choice_stays_when_every_fallback_is_sick_too() -> None:
    choice = choice_of(MID, TOP)
    assert demote_unhealthy(choice, {"mid": observed(0.9), "top": observed(0.8)}, 0.5) is choice


def test_sick_choice_without_fallbacks_stays() -> None:
    choice = choice_of(MID)
    assert demote_unhealthy(choice, {"mid": observed(1.0)}, 0.5) is choice


def test_error_rate_at_the_limit_is_not_sick() -> None:
    choice = choice_of(MID, TOP)
    assert demote_unhealthy(choice, {"mid": observed(0.5)}, 0.5) is choice


def test_model_without_observations_is_not_sick() -> None:
    choice = choice_of(MID, TOP)
    assert demote_unhealthy(choice, {"mid": observed(1.0, samples=0)}, 0.5) is choice
    assert demote_unhealthy(choice, {}, 0.5) is choice


# --- uniform_share and shadow_model -----------------------------------------------


def test_uniform_share_is_a_stable_crc_of_the_request_id() -> None:
    assert uniform_share("r-1") == uniform_share("r-1")
    assert uniform_share("r-1") == zlib.crc32(b"r-1") / 2**32
    assert uniform_share("r-1") != uniform_share("r-2")


def test_uniform_share_spreads_over_zero_to_one() -> None:
    shares = [uniform_share(f"req-{i}") for i in range(5000)]
    assert all(0 <= s < 1 for s in shares)
    below = sum(s < 0.25 for s in shares) / len(shares)
    assert below == pytest.approx(0.25, abs=0.03)
    assert sum(shares) / len(shares) == pytest.approx(0.5, abs=0.03)


def test_full_share_always_shadows_the_runner_up() -> None:
    choice = choice_of(MID, TOP, CHEAP)
    assert all(shadow_model(choice, f"r-{i}", 1.0) == "top" for i in range(100))


def test_zero_share_never_shadows() -> None:
    choice = choice_of(MID, TOP, CHEAP)
    assert all(shadow_model(choice, f"r-{i}", 0.0) is None for i in range(100))


def test_no_fallback_means_no_shadow() -> None:
    assert shadow_model(choice_of(MID), "r-1", 1.0) is None


def test_partial_share_samples_by_request_id() -> None:
    choice = choice_of(MID, TOP)
    share = uniform_share("r-1")
    assert shadow_model(choice, "r-1", share) is None  # share is exclusive
    assert shadow_model(choice, "r-1", min(share + 1e-6, 1.0)) == "top"
    sampled = sum(shadow_model(choice, f"q-{i}", 0.1) is not None for i in range(5000))
    assert sampled / 5000 == pytest.approx(0.1, abs=0.02)


def test_unsure_margin_shadows_only_predictions_near_the_target() -> None:
    near = dataclasses.replace(choice_of(MID, TOP), predicted={"mid": 0.74, "top": 0.9})
    far = dataclasses.replace(choice_of(MID, TOP), predicted={"mid": 0.95, "top": 0.9})
    unpredicted = dataclasses.replace(choice_of(MID, TOP), predicted={})
    assert shadow_model(near, "r-1", 1.0, target=0.7, unsure_margin=0.05) == "top"
    assert shadow_model(near, "r-1", 1.0, target=0.7, unsure_margin=0.03) is None
    assert shadow_model(far, "r-1", 1.0, target=0.7, unsure_margin=0.05) is None
    assert shadow_model(far, "r-1", 1.0, target=0.7) == "top"  # no margin: any request
    assert shadow_model(unpredicted, "r-1", 1.0, target=0.7, unsure_margin=0.05) == "top"
    # The share still samples among the unsure ones.
    sampled = sum(
        shadow_model(near, f"q-{i}", 0.1, target=0.7, unsure_margin=0.05) is not None
        for i in range(5000)
    )
    assert sampled / 5000 == pytest.approx(0.1, abs=0.02)


# --- learned ---------------------------------------------------------------------


def test_learned_version_comes_from_its_model() -> None:
    assert Learned(None, {}).version is None
    assert Learned(FakePredictor({}, version="abc"), {}).version == "abc"


def test_learned_asks_the_model_about_the_prompt_text_and_task() -> None:
    fake = FakePredictor({})
    Learned(fake, {}).choose(given(text="summarise this", task="summarization"))
    assert fake.asked == [("summarise this", "summarization")]


def test_learned_without_a_model_uses_configured_qualities() -> None:
    choice = Learned(None, {}).choose(given())
    assert choice is not None
    assert choice.chosen.model == "mid"
    assert choice.predicted == {}
    assert choice.reason == (
        "cheapest of 2 eligible models with quality >= 0.70 "
        "(no model predicted; configured qualities)"
    )


def test_learned_chooses_cheapest_model_meeting_the_target_on_predicted_quality() -> None:
    # Configured, "cheap" is below the target; predicted for this prompt, it is good enough.
    fake = FakePredictor({"cheap": 0.9, "mid": 0.6, "top": 0.97})
    choice = Learned(fake, {}).choose(given())
    assert choice is not None
    assert choice.chosen.model == "cheap"
    assert choice.chosen.quality_score == 0.9
    assert names(choice.fallbacks) == ["top", "mid"]
    assert choice.predicted == {"cheap": 0.9, "mid": 0.6, "top": 0.97}
    assert choice.reason == (
        "cheapest of 2 eligible models with quality >= 0.70 (predicted for 3 of 3 models)"
    )


def test_learned_prediction_can_rule_a_model_out() -> None:
    fake = FakePredictor({"mid": 0.3})
    choice = Learned(fake, {}).choose(given())
    assert choice is not None
    assert choice.chosen.model == "top"


def test_models_without_predictions_keep_their_configured_quality() -> None:
    # Only "cheap" is predicted (too low); "mid" keeps its configured 0.8 and wins.
    fake = FakePredictor({"cheap": 0.2})
    choice = Learned(fake, {}).choose(given())
    assert choice is not None
    assert choice.chosen.model == "mid"
    assert choice.chosen.quality_score == 0.8
    assert choice.predicted == {"cheap": 0.2}
    assert choice.reason.endswith("(predicted for 1 of 3 models)")


def test_aliases_map_catalogue_names_to_the_models_names() -> None:
    fake = FakePredictor({"small-2025": 0.95, "cheap": 0.1})
    choice = Learned(fake, {"cheap": "small-2025"}).choose(given())
    assert choice is not None
    assert choice.chosen.model == "cheap"
    # scores are keyed by the catalogue name; the unaliased name is not read for "cheap"
    assert choice.predicted == {"cheap": 0.95}


def test_ineligible_models_are_neither_scored_nor_counted() -> None:
    verdicts = [CHEAP, MID, verdict("top", 5, 0.95, eligible=False)]
    fake = FakePredictor({"cheap": 0.9, "top": 0.99})
    choice = Learned(fake, {}).choose(given(verdicts))
    assert choice is not None
    assert choice.chosen.model == "cheap"
    assert choice.predicted == {"cheap": 0.9}
    assert "top" not in names(choice.fallbacks)
    assert choice.reason.endswith("(predicted for 1 of 2 models)")


def test_learned_scores_are_rounded_but_compared_unrounded() -> None:
    fake = FakePredictor({"cheap": 0.699996})
    choice = Learned(fake, {}).choose(given())
    assert choice is not None
    assert choice.predicted == {"cheap": 0.7}
    assert choice.chosen.model == "mid"  # 0.699996 does not reach 0.7


def test_learned_with_a_model_that_predicts_nothing_says_so() -> None:
    choice = Learned(FakePredictor({"unknown-model": 0.9}), {}).choose(given())
    assert choice is not None
    assert choice.chosen.model == "mid"
    assert choice.reason.endswith("(no model predicted; configured qualities)")


def test_learned_with_nothing_eligible_chooses_nothing() -> None:
    verdicts = [verdict("a", 1, 0.9, eligible=False)]
    assert Learned(FakePredictor({"a": 1.0}), {}).choose(given(verdicts)) is None


def test_learned_keeps_the_fallback_chains() -> None:
    fake = FakePredictor({"cheap": 0.9})
    choice = Learned(fake, {}).choose(given(chains={"cheap": ["top"]}))
    assert choice is not None
    assert names(choice.fallbacks) == ["top", "mid"]

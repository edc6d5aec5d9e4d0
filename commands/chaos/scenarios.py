"""The named scenarios: each one's faults on a timeline and the checks it must pass."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from commands.chaos.run import Run, Scenario
from schemas.config import SwitchyardConfig
from schemas.messages import InferenceRequest
from schemas.simulator import SimulatorSettings


async def _outage(run: Run) -> None:
    await run.at(4)
    await run.set_model("sim-small", down=True)
    await run.at(12)
    await run.set_model("sim-small", down=False)


def _outage_checks(run: Run, s: dict[str, Any]) -> dict[str, bool]:
    small = s["circuits"].get("sim-small", {})
    return {
        "every job answered ok": s["statuses"].get("ok", 0) == s["sent"],
        "fallbacks carried the outage": s["fallbacks"] > 0,
        "sim-small circuit opened": small.get("opened", 0) >= 1,
        "sim-small circuit closed again": small.get("final") == "closed",
    }


STORM_MODELS = ("sim-small", "sim-medium", "sim-large")
STORM_RPS = 15.0
STORM_FROM_S, STORM_TO_S = 4.0, 14.0


STORM_PINNED_EVERY = 4


def _storm_shape(request: InferenceRequest, i: int) -> InferenceRequest:
    # Every 4th job names sim-small, which has no fallback: with the others that route to
    # it, more than the storm lets through, so some must wait on a retry topic. Without
    # them every job could be answered by a fallback (sim-local is not limited) on a
    # pipeline slower than the build machine's, and nothing was parked (CI, 2026-12-07).
    return _pinned_to_small(request, i) if i % STORM_PINNED_EVERY == 0 else request


async def _storm(run: Run) -> None:
    await run.at(STORM_FROM_S)
    run.marks["before"] = await run.provider_stats()
    for model in STORM_MODELS:
        await run.set_model(model, rate_limit_rps=STORM_RPS)
    await run.at(STORM_TO_S)
    run.marks["during"] = await run.provider_stats()
    for model in STORM_MODELS:
        await run.set_model(model, rate_limit_rps=None)


def _storm_checks(run: Run, s: dict[str, Any]) -> dict[str, bool]:
    before, during = run.marks["before"], run.marks["during"]
    window = STORM_TO_S - STORM_FROM_S
    calls = {m: during[m]["requests"] - before[m]["requests"] for m in STORM_MODELS}
    limited = {m: during[m]["rate_limited"] - before[m]["rate_limited"] for m in STORM_MODELS}
    # The bucket starts full: one second of burst on top of the rate.
    allowed = STORM_RPS * (window + 1)
    s["storm"] = {
        "window_s": window,
        "limit_rps": STORM_RPS,
        "calls": calls,
        "rate_limited": limited,
        "accepted": {m: calls[m] - limited[m] for m in STORM_MODELS},
        "allowed_per_model": allowed,
    }
    return {
        "every job answered ok": s["statuses"].get("ok", 0) == s["sent"],
        "jobs were retried later": s["retried"] > 0,
        "calls within 1.5x of the limit": all(c <= 1.5 * allowed for c in calls.values()),
    }


async def _worker_kill(run: Run) -> None:
    await run.at(5)
    await run.kill("provider-1")
    await run.at(7)
    run.restart("provider-1", "provider")
    await run.at(12)
    await run.kill("provider-2", graceful=True)
    await run.at(13)
    run.restart("provider-2", "provider")


def _kill_checks(run: Run, s: dict[str, Any], stops: int | None = None) -> dict[str, bool]:
    # Calls the simulator served whose outcome no reply records: lost in a crash.
    extra = s["provider_calls"] - s["calls_in_replies"]
    s["unrecorded_provider_calls"] = extra
    # A worker stopped repeats at most the calls it interrupted: what one worker may
    # have open, once per stop (on Kafka, worker-kill's two stops repeated 193 and 227
    # calls against one worker's 176).
    calls_open = sum(m.max_concurrency for m in run.config.models)
    in_flight = min(run.config.dispatch.max_in_flight, calls_open)
    stops = stops or max(1, sum(run.restarts.values()))
    s["repeated_calls_bound"] = stops * in_flight
    return {
        "every job answered ok": s["statuses"].get("ok", 0) == s["sent"],
        "repeated calls bounded by jobs in flight, per worker stopped": (
            0 <= extra <= stops * in_flight
        ),
    }


KILL_AT_IN_FLIGHT = 4000
# Long enough for a restarted worker on two busy cores to open 4,000 calls before the
# first of them ends (6 s was not, on CI).
IN_FLIGHT_LATENCY_S = 12.0


async def _kill_in_flight(run: Run) -> None:
    # The provider worker is stopped while every job is routed, so that when it starts it
    # finds them all waiting and opens 4,000 calls at once, however fast routing was.
    # Stopped first, it drains only the few quick calls it had started.
    await run.kill("provider-1", graceful=True)
    settings = run.config.simulator or SimulatorSettings()
    scale = settings.latency_scale or 1.0
    for model in settings.models:
        await run.set_model(model, latency_ms=IN_FLIGHT_LATENCY_S * 1000 / scale, latency_sigma=0)
    await run.wait_routed(run.scenario.jobs, timeout_s=240)
    run.restart("provider-1", "provider")
    run.marks["in_flight_at_kill"] = await run.wait_in_flight(KILL_AT_IN_FLIGHT, timeout_s=90)
    await run.kill("provider-1")
    await asyncio.sleep(2)
    run.restart("provider-1", "provider")


def _in_flight_tune(config: SwitchyardConfig) -> SwitchyardConfig:
    """Room for 4,000 calls at once in one worker, and no budget to stop a tenant."""
    room = config.dispatch.max_in_flight
    models = [m.model_copy(update={"max_concurrency": room}) for m in config.models]
    tenants = {
        name: t.model_copy(update={"budget_usd": None}) for name, t in config.tenants.items()
    }
    return config.model_copy(update={"models": models, "tenants": tenants})


def _in_flight_checks(run: Run, s: dict[str, Any]) -> dict[str, bool]:
    s["in_flight_at_kill"] = run.marks["in_flight_at_kill"]
    return {
        f"SIGKILL hit {KILL_AT_IN_FLIGHT:,} calls in flight": (
            s["in_flight_at_kill"] >= KILL_AT_IN_FLIGHT
        ),
        # One stop interrupts calls: the SIGTERM comes before the first job is routed.
        **_kill_checks(run, s, stops=1),
    }


HANDOVER_AT_IN_FLIGHT = 150
HANDOVER_LATENCY_S = 15.0


async def _handover(run: Run) -> None:
    # Calls outlast the revocation's wait (REVOKE_WAIT_S), so partitions change owner
    # while their jobs are still being called.
    settings = run.config.simulator or SimulatorSettings()
    scale = settings.latency_scale or 1.0
    for model in settings.models:
        await run.set_model(model, latency_ms=HANDOVER_LATENCY_S * 1000 / scale, latency_sigma=0)
    run.marks["in_flight_at_handover"] = await run.wait_in_flight(
        HANDOVER_AT_IN_FLIGHT, timeout_s=60
    )
    run.restart("provider-2", "provider")


def _handover_checks(run: Run, s: dict[str, Any]) -> dict[str, bool]:
    s["in_flight_at_handover"] = run.marks["in_flight_at_handover"]
    s["calls_made_twice"] = s["provider_calls"] - s["sent"]
    return {
        "every job answered ok": s["statuses"].get("ok", 0) == s["sent"],
        f"partitions moved with {HANDOVER_AT_IN_FLIGHT} calls in flight": (
            s["in_flight_at_handover"] >= HANDOVER_AT_IN_FLIGHT
        ),
        "the new owner called again the jobs it took over": s["calls_made_twice"] > 0,
    }


async def _telemetry_down(run: Run) -> None:
    await run.at(4)
    await run.kill("telemetry")
    run.marks["down_from"] = datetime.now(UTC)
    await run.at(14)
    run.marks["down_to"] = datetime.now(UTC)
    run.restart("telemetry", "telemetry")


def _telemetry_checks(run: Run, s: dict[str, Any]) -> dict[str, bool]:
    s["replies_while_down"] = run.marks.get("replies_while_down", 0)
    return {
        "every job answered ok": s["statuses"].get("ok", 0) == s["sent"],
        "replies kept flowing while the sink was down": s["replies_while_down"] > 0,
        "every telemetry row there exactly once": s["telemetry_rows"] == s["answered"],
    }


SLOW_DEADLINE_S = 4.0


async def _slow_tail(run: Run) -> None:
    await run.at(4)
    # Median 20x slower (40 -> 800 ms) and a heavy tail: p99 about 8 s.
    await run.set_model("sim-small", latency_ms=800, latency_sigma=1.0)
    await run.at(14)
    await run.set_model("sim-small", latency_ms=40, latency_sigma=0.3)


def _slow_shape(request: InferenceRequest, i: int) -> InferenceRequest:
    deadline = datetime.now(UTC) + timedelta(seconds=SLOW_DEADLINE_S)
    return request.model_copy(update={"deadline": deadline})


def _slow_tune(config: SwitchyardConfig) -> SwitchyardConfig:
    models = [
        m.model_copy(update={"timeout_s": 1.5, "first_byte_timeout_s": 1.5})
        if m.name == "sim-small"
        else m
        for m in config.models
    ]
    return config.model_copy(update={"models": models})


def _slow_checks(run: Run, s: dict[str, Any]) -> dict[str, bool]:
    statuses = s["statuses"]
    return {
        # A router refusing a job whose deadline leaves no model time is its expiry, early.
        "every job answered ok or expired": (
            statuses.get("ok", 0) + s["expired"] + s["deadline_refused"] == s["sent"]
        ),
        "no answer later than its deadline": s["late_ok"] == 0,
        "timeouts shifted traffic to fallbacks": s["fallbacks"] > 0,
    }


PROVIDER_RPS = 20.0


async def _provider_limit(run: Run) -> None:
    await run.set_model("sim-small", rate_limit_rps=PROVIDER_RPS)


def _pinned_to_small(request: InferenceRequest, i: int) -> InferenceRequest:
    # acme's, with data sim-small is cleared for: nothing refuses the pin.
    pinned = {"tenant": "acme", "data_classification": None, "model": "sim-small"}
    return request.model_copy(update=pinned)


def _limit_in_config(config: SwitchyardConfig) -> SwitchyardConfig:
    models = [
        m.model_copy(update={"requests_per_minute": PROVIDER_RPS * 60})
        if m.name == "sim-small"
        else m
        for m in config.models
    ]
    return config.model_copy(update={"models": models})


def _provider_limit_checks(run: Run, s: dict[str, Any]) -> dict[str, bool]:
    small = s["provider_stats"]["sim-small"]
    s["provider_limit"] = {
        "limit_rps": PROVIDER_RPS,
        "calls": small["requests"],
        "rate_limited": small["rate_limited"],
    }
    return {
        "every job answered ok": s["statuses"].get("ok", 0) == s["sent"],
        "at most 5% of calls over the provider's limit": (
            small["rate_limited"] <= 0.05 * small["requests"]
        ),
    }


async def _no_faults(run: Run) -> None:
    return None


def _poison_checks(run: Run, s: dict[str, Any]) -> dict[str, bool]:
    expected = run.marks["poison"]
    letters = s["dead_letters_by_code"]
    return {
        "every good job answered ok": s["statuses"].get("ok", 0) == s["sent"],
        "every bad message dead-lettered with its reason": letters == expected,
        "no worker restarted": s["workers_alive"],
    }


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario(
            "provider-outage",
            "the cheapest model's endpoint is down from 4 s to 12 s",
            _outage,
            _outage_checks,
        ),
        Scenario(
            "rate-limit-storm",
            f"the three 'sim' models answer 429 + Retry-After above {STORM_RPS:g} calls/s "
            f"from {STORM_FROM_S:g} s to {STORM_TO_S:g} s; every {STORM_PINNED_EVERY}th job "
            "names sim-small",
            _storm,
            _storm_checks,
            shape=_storm_shape,
        ),
        Scenario(
            "worker-kill",
            "provider-1 gets SIGKILL at 5 s (restarted at 7 s); "
            "provider-2 gets SIGTERM at 12 s (restarted at 13 s)",
            _worker_kill,
            _kill_checks,
        ),
        Scenario(
            "kill-in-flight",
            f"every model answers in {IN_FLIGHT_LATENCY_S:g} s; the one provider worker is "
            "stopped until every job is routed, then gets SIGKILL once "
            f"{KILL_AT_IN_FLIGHT:,} calls are in flight (restarted 2 s later)",
            _kill_in_flight,
            _in_flight_checks,
            tune=_in_flight_tune,
            jobs=5000,
            rate_per_s=3000.0,
            providers=1,
        ),
        Scenario(
            "handover",
            f"every model answers in {HANDOVER_LATENCY_S:g} s; a second provider worker "
            f"joins once {HANDOVER_AT_IN_FLIGHT} calls are in flight, so partitions move "
            "to it mid-call",
            _handover,
            _handover_checks,
            tune=_in_flight_tune,
            jobs=300,
            rate_per_s=300.0,
            providers=1,
        ),
        Scenario(
            "provider-limit",
            f"sim-small allows {PROVIDER_RPS:g} calls/s (429 above) and the config says so "
            "(requests_per_minute); every job names it; two provider workers share the limit",
            _provider_limit,
            _provider_limit_checks,
            shape=_pinned_to_small,
            tune=_limit_in_config,
            jobs=200,
        ),
        Scenario(
            "telemetry-down",
            "the telemetry worker is killed at 4 s and stays down until 14 s",
            _telemetry_down,
            _telemetry_checks,
        ),
        Scenario(
            "slow-tail",
            "sim-small's median latency jumps 20x (p99 about 8 s) from 4 s to 14 s; "
            f"every job has a {SLOW_DEADLINE_S:g} s deadline",
            _slow_tail,
            _slow_checks,
            shape=_slow_shape,
            tune=_slow_tune,
        ),
        Scenario(
            "poison",
            "one message in 20 is malformed, oversized, wrongly typed or for an unknown tenant",
            _no_faults,
            _poison_checks,
            poison_every=20,
        ),
    ]
}

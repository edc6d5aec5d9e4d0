"""``switchyard bench`` end to end on small numbers: every scenario runs and reports.

No timing is asserted (benchmarks are not tests): only that every job of every
scenario was answered and the figures are the ones the README's table needs.
"""

from pathlib import Path

import pytest

from commands.bench.names import SCENARIOS
from commands.bench.run import BenchPlan, run_bench
from streams.local.broker import EmbeddedBroker
from tests.helpers import sample_config, stack_environment

HEADLINE = {
    "e2e_jobs_per_s", "e2e_p50_ms", "e2e_p99_ms", "inflight_10k_seconds",
    "inflight_10k_peak_rss_mb", "idle_p50_ms", "idle_p99_ms", "routing_jobs_per_s",
    "routing_p99_ms", "sink_rows_per_s", "litellm_e2e_jobs_per_s", "litellm_inflight_10k_seconds",
    "ceiling_jobs_per_s", "ratio_vs_litellm_e2e", "ratio_vs_litellm_inflight", "scaleout_ratio",
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_scenario_answers_every_job_and_reports_its_figures(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    env = stack_environment(broker, tmp_path)
    plan = BenchPlan(e2e_jobs=60, inflight_jobs=40, inflight_latency_ms=500, idle_jobs=5,
                     idle_window_s=1, routing_jobs=50, scaleout_jobs=30,
                     litellm_concurrency=((8,), (40,)),
                     ceiling_concurrency=((8,), (40,)))  # fmt: skip
    result = run_bench(env, sample_config(), plan)
    s = result["scenarios"]
    assert set(s) == set(SCENARIOS) - {"litellm", "ceiling"} | {"clients_e2e", "clients_inflight"}
    assert HEADLINE <= set(result)
    for name, jobs in (("e2e", 60), ("inflight", 40)):
        assert s[name]["jobs"] == s[name]["answered"] == s[name]["ok"] == jobs, name
        assert 0 < s[name]["p50_ms"] <= s[name]["p99_ms"], name
        assert set(s[name]["peak_rss_mb"]) == {"simulator", "router", "provider", "telemetry"}
        assert all(mb > 0 for mb in s[name]["peak_rss_mb"].values()), name
    assert s["inflight"]["p50_ms"] >= 500  # every job waited for its 500 ms provider
    assert 0 < s["idle"]["p50_ms"] <= s["idle"]["p99_ms"]
    assert set(s["idle"]["idle_cpu_percent"]) == {"simulator", "router", "provider", "telemetry"}
    assert s["routing"]["jobs"] == 50 and s["routing"]["jobs_per_s"] > 0
    assert s["routing"]["p99_routing_ms"] > 0
    assert s["scaleout"]["answered"] == {"one": 30, "two": 30}
    assert s["scaleout"]["one"] > 0 and s["scaleout"]["two"] > 0
    assert s["sink"]["events"] == 60  # the e2e run's telemetry, one event per job
    assert s["sink"]["rows"] >= 2 * 60  # a request row and at least one attempt each
    assert s["sink"]["rows_per_s"] > 0
    # LiteLLM and the bare client ran the same jobs, each answering all of them.
    for clients, jobs in (("clients_e2e", 60), ("clients_inflight", 40)):
        for side in ("litellm", "ceiling"):
            best = s[clients]["best"][side]
            assert best["jobs"] == best["ok"] == jobs, (clients, side, best["errors"])
            assert best["peak_rss_mb"] > 0
    assert s["clients_inflight"]["best"]["litellm"]["p50_ms"] >= 500
    ratio = result["e2e_jobs_per_s"] / result["litellm_e2e_jobs_per_s"]
    assert result["ratio_vs_litellm_e2e"] == pytest.approx(ratio, abs=0.01)

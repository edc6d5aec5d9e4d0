"""The closed loop on the real pipeline: route, judge, refit, and route again with the refit.

A tenant routed by the learned strategy gets answers from the model its
router trusts; every answer is judged bad through ``switchyard feedback``; the
telemetry worker joins the judgements to the decisions; ``switchyard router
train --from-telemetry`` refits the router from them; the running router loads
the new version and predicts that model lower. Processes and broker are real.
"""

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from commands.cli import main
from commands.telemetry_reader import run_query, telemetry_table
from processors.learning.training import train_router
from schemas.messages import ChatMessage, InferenceReply, InferenceRequest
from schemas.outcomes import OutcomeRow
from sinks.router_artifact import load_router, save_router
from streams.client import SwitchyardClient
from streams.local.broker import EmbeddedBroker
from streams.local.stack import Stack
from streams.topics import TopicCatalogue
from tests.helpers import SAMPLE_CONFIG, point_cli_at, running_stack, stack_environment
from tests.synthetic_outcomes import synthetic_rows

pytestmark = pytest.mark.slow

ALIASES = {"sim-small": "alpha-small", "sim-medium": "beta-mid", "sim-large": "gamma-large"}
# Easy markers of the synthetic data: the router predicts alpha-small does well.
PROMPT = "hello simple list colour name short w1 w2 w3"
JUDGED = 8


@pytest.fixture
def router_dir(tmp_path: Path) -> Path:
    rows = [OutcomeRow.model_validate(r) for r in synthetic_rows(300, seed=5)]
    directory = tmp_path / "router"
    save_router(directory, *train_router({"synthetic": rows}, datetime.now(UTC)))
    return directory


@pytest.fixture
def stack(
    broker: EmbeddedBroker,
    namespace: str,
    tmp_path: Path,
    router_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Stack]:
    raw: dict[str, Any] = yaml.safe_load(SAMPLE_CONFIG.read_text())
    raw["tenants"]["learner"] = {"strategy": "learned", "allowed_providers": ["sim"]}
    raw["routing"]["learned"] = {"artifact": str(router_dir), "aliases": ALIASES, "reload_s": 0.5}
    config = tmp_path / "loop.yaml"
    config.write_text(yaml.safe_dump(raw))
    # The CLI in this process (feedback, router train) points at the same stack.
    point_cli_at(stack_environment(broker, tmp_path, namespace, config), monkeypatch)
    with running_stack(broker, namespace, tmp_path, config) as running:
        yield running


def ask(stack: Stack, request_id: str) -> InferenceReply:
    request = InferenceRequest(
        request_id=request_id,
        tenant="learner",
        messages=[ChatMessage(role="user", content=PROMPT)],
        task="chat",
        max_tokens=32,
    )

    async def one() -> InferenceReply:
        async with SwitchyardClient(stack.bootstrap, TopicCatalogue(stack.env.namespace)) as c:
            return await c.request(request, timeout_s=90)

    return asyncio.run(one())


def wait_for(check: Any, what: str, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_feedback_refits_the_running_router(stack: Stack, router_dir: Path) -> None:
    first = load_router(router_dir).version
    replies = [ask(stack, f"loop-{i}") for i in range(JUDGED)]
    for reply in replies:
        assert reply.status == "ok" and reply.routing and reply.routing.plan
        assert reply.routing.plan.router_version == first
    model, plan = replies[0].model, replies[0].routing.plan
    assert model is not None and {r.model for r in replies} == {model}
    predicted_before = plan.predicted_quality[model]

    for reply in replies:
        assert main(["feedback", reply.request_id, "--tenant", "learner", "--down"]) == 0
    table = telemetry_table(stack.env, "decision_feedback")
    wait_for(
        lambda: run_query(stack.env, f"SELECT count() FROM {table}")[1][0][0] >= JUDGED,
        "feedback joined to its decisions",
    )
    argv = ["router", "train", "--from-telemetry", "--router", str(router_dir)]
    assert main([*argv, "--since", "1h", "--min-rows", "5"]) == 0
    refit = load_router(router_dir)
    assert refit.version != first
    assert refit.manifest.feedback[0].intercept_shifts[ALIASES[model]] < 0

    def refitted_reply() -> InferenceReply | None:
        reply = ask(stack, f"after-{time.monotonic_ns()}")
        plan = reply.routing.plan if reply.routing else None
        return reply if plan is not None and plan.router_version == refit.version else None

    after = wait_for(refitted_reply, "the router to load the refit version").routing.plan
    predicted_after = after.predicted_quality[model]
    assert predicted_after < predicted_before - 0.05
    stack.check_alive()

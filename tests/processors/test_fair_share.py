"""Fair share: lanes first, then deficit round robin by weight, FIFO within a tenant."""

from collections import Counter

import pytest

from processors.fair_share import FairQueue


def _queue(weights: dict[str, float] | None = None) -> FairQueue[str]:
    return FairQueue((weights or {}).get if weights else lambda tenant: 1.0)


def _drain(queue: FairQueue[str]) -> list[str]:
    out = []
    while (item := queue.pop()) is not None:
        out.append(item)
    return out


def test_interactive_overtakes_a_batch_backlog_of_its_own_tenant() -> None:
    queue = _queue()
    for i in range(1000):
        queue.push(f"acme-batch-{i}", "acme", "batch")
    queue.push("acme-now", "acme", "interactive")
    assert queue.pop() == "acme-now"
    assert len(queue) == 1000


def test_another_tenant_waits_one_turn_not_a_backlog() -> None:
    queue = _queue()
    for i in range(20_000):
        queue.push(f"acme-{i}", "acme", "batch")
    assert [queue.pop() for _ in range(3)] == ["acme-0", "acme-1", "acme-2"]
    queue.push("globex-0", "globex", "batch")
    served = [queue.pop() for _ in range(2)]
    assert "globex-0" in served


@pytest.mark.parametrize(("weights", "expected"), [
    ({"a": 1, "b": 1}, {"a": 0.5, "b": 0.5}),
    ({"a": 3, "b": 1}, {"a": 0.75, "b": 0.25}),
    ({"a": 0.5, "b": 2, "c": 1.5}, {"a": 0.125, "b": 0.5, "c": 0.375}),
])  # fmt: skip
def test_slots_split_by_weight_while_everyone_waits(
    weights: dict[str, float], expected: dict[str, float]
) -> None:
    queue = _queue(weights)
    for tenant in weights:
        for i in range(10_000):
            queue.push(f"{tenant}-{i}", tenant, "batch")
    served = Counter(queue.pop().split("-")[0] for _ in range(4000))  # type: ignore[union-attr]
    for tenant, share in expected.items():
        assert served[tenant] / 4000 == pytest.approx(share, abs=0.01)


def test_order_within_a_tenant_and_lane_is_kept() -> None:
    queue = _queue()
    for i in range(50):
        queue.push(f"a-{i}", "a", "batch")
        queue.push(f"b-{i}", "b", "batch")
    served = _drain(queue)
    assert [s for s in served if s.startswith("a-")] == [f"a-{i}" for i in range(50)]
    assert [s for s in served if s.startswith("b-")] == [f"b-{i}" for i in range(50)]


def test_an_idle_tenant_banks_no_credit() -> None:
    queue = _queue({"a": 1, "b": 5})
    queue.push("b-0", "b", "batch")
    assert queue.pop() == "b-0"  # b leaves the round: its 4 spare credits are gone
    for i in range(10):
        queue.push(f"a-{i}", "a", "batch")
        queue.push(f"b-{i + 1}", "b", "batch")
    first_six = [queue.pop() for _ in range(6)]
    assert sum(1 for s in first_six if s and s.startswith("b-")) <= 5


def test_drop_removes_only_what_it_is_asked_to() -> None:
    queue = _queue()
    for i in range(10):
        queue.push(f"a-{i}", "a", "batch" if i % 2 else "interactive")
        queue.push(f"b-{i}", "b", "batch")
    dropped = queue.drop(lambda item: item.startswith("a-"))
    assert sorted(dropped) == sorted(f"a-{i}" for i in range(10))
    assert len(queue) == 10
    assert _drain(queue) == [f"b-{i}" for i in range(10)]
    assert queue.pop() is None and len(queue) == 0

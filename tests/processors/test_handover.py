from datetime import UTC, datetime

from processors.handover import handed_over
from processors.outputs import Output
from schemas.messages import InferenceReply
from schemas.settlement import SpendSettlement


def _settlement(reserved: float, actual: float) -> Output:
    return Output("settlement", "acme", SpendSettlement(
        request_id="r1", tenant="acme", reserved_usd=reserved, actual_usd=actual
    ))  # fmt: skip


def test_a_handed_over_job_sends_only_what_its_calls_cost() -> None:
    reply = InferenceReply(
        request_id="r1", tenant="acme", status="ok", finished_at=datetime.now(UTC)
    )
    outputs = [
        Output("reply", "r1", reply),
        Output("answer", "r1", reply),
        Output("telemetry", "r1", reply),
        _settlement(0.004, 0.001),
    ]
    kept = handed_over(outputs)
    assert [o.kind for o in kept] == ["settlement"]
    message = kept[0].message
    assert isinstance(message, SpendSettlement)
    # the next owner's settlement releases the reservation; this one only charges the call
    assert (message.reserved_usd, message.actual_usd) == (0.0, 0.001)
    assert kept[0].key == "acme"


def test_a_handed_over_job_that_cost_nothing_sends_nothing() -> None:
    assert handed_over([_settlement(0.004, 0.0)]) == []

"""What a job still sends when its partition went to another worker while it ran.

The partition's next owner replays the job and answers it (``streams.kafka.leases``),
so this worker's reply, answer-ledger entry, telemetry and dead letter would all be
second copies: they are dropped. What the calls cost is not: the provider was paid,
so the settlement goes out with the cost and without releasing the reservation,
which the next owner's own settlement releases.
"""

from processors.outputs import Output
from schemas.settlement import SpendSettlement


def handed_over(outputs: list[Output]) -> list[Output]:
    """The outputs a handed-over job still sends: the cost of calls it made, if any."""
    return [
        Output(
            "settlement",
            output.key,
            output.message.model_copy(update={"reserved_usd": 0.0}),
        )
        for output in outputs
        if output.kind == "settlement"
        and isinstance(output.message, SpendSettlement)
        and output.message.actual_usd > 0
    ]

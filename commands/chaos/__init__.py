"""``switchyard chaos SCENARIO``: the real pipeline under an injected fault, counted.

Each run starts its own stack in a fresh namespace and state folder: the
simulated providers, the router, two provider workers and the telemetry
worker, each an OS process (the broker is reused if one is running). Jobs are
published at a steady rate while a scenario's faults are applied on a
timeline: provider outages, 429 storms and latency jumps through the
simulator's admin endpoint, SIGKILL and SIGTERM to worker processes. Then
every submitted job's reply is accounted for, provider calls are read from
the simulator's counters, circuit transitions from the health topic, dead
letters from their topic, and telemetry rows from ClickHouse.

Each scenario states its own checks; ``ok`` is true when all hold and no job
was lost or answered twice.

Modules: ``run`` (a run in progress and what a scenario is), ``scenarios``
(the named faults and their checks), ``harness`` (starting the stack, sending
jobs, collecting replies) and ``report`` (counting and the summary).
"""

from commands.chaos.harness import run_chaos
from commands.chaos.report import print_summary, read_topic
from commands.chaos.run import Run, Scenario
from commands.chaos.scenarios import SCENARIOS

__all__ = ["SCENARIOS", "Run", "Scenario", "print_summary", "read_topic", "run_chaos"]

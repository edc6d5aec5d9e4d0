"""``switchyard bench``: Switchyard's throughput and latency, scenario by scenario, in one run.

``run`` orders the scenarios and builds the report's headline keys; ``pipeline``
runs Switchyard's stacks; ``sink`` the telemetry sink alone; ``report`` prints the
table; ``strategies`` is ``--router DIR``'s comparison of routing strategies.
``names`` lists the scenarios without importing any of them (the CLI's help).
"""

"""``switchyard bench``: Switchyard's throughput and latency, scenario by scenario, in one run,
side by side with LiteLLM's Router and a bare HTTP client on the same simulator.

``run`` orders the scenarios and builds the report's headline keys; ``pipeline``
runs Switchyard's stacks; ``sink`` the telemetry sink alone; ``litellm_side`` and
``ceiling`` the two in-process clients (``clients`` holds what they share, ``jobs``
the job shape they take); ``report`` prints the table; ``strategies`` is
``--router DIR``'s comparison of routing strategies. ``names`` lists the scenarios
without importing any of them (the CLI's help).
"""

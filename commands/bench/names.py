"""The bench's scenarios, in the order one run measures them."""

SCENARIOS = ("e2e", "sink", "inflight", "idle", "routing", "scaleout", "litellm", "ceiling")

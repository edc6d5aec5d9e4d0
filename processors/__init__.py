"""Pure routing logic: validate, classify, policy, budget, route, dispatch.

Nothing here touches Kafka, the network or the wall clock: callers pass in the
config, the state snapshot and ``now``. ``streams/`` drives these functions.
May import ``schemas`` only (and numpy/scipy in ``processors.learning``).
"""

"""Kafka plumbing shared by the workers, the client and the commands.

Consumers with the group settings they share, whole-topic followers and
read-to-end, commit tracking for out-of-order work, topic creation, and the
workarounds for the embedded broker's measured defects. May import
``schemas`` and ``streams.topics``; never a worker, a command or ``processors``.
"""

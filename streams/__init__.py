"""Kafka wiring: everything that reads or writes a topic, by role.

- ``streams.topics``: the topic catalogue, every topic declared once.
- ``streams.client``: the client backends use to submit jobs and read replies.
- ``streams.kafka``: consumers, followers, commit tracking, admin, broker quirks.
- ``streams.workers``: the router, provider and telemetry workers.
- ``streams.providers``: one HTTP client per model API.
- ``streams.local``: the embedded broker and a local stack of processes.

May import ``processors``, ``schemas`` and ``sinks``; never ``commands``.
"""

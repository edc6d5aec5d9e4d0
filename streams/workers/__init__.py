"""The three long-running processes: router, provider worker, telemetry worker.

Each reads as decode, decide, send: it decodes a record, asks ``processors``
once what to do, and sends what it is told. Beside them live the state they
follow (route state, endpoint health, the answer ledger). May import
``processors``, ``schemas``, ``sinks``, ``streams.kafka``, ``streams.providers``,
``streams.outputs`` and ``streams.topics``; never ``commands`` or ``streams.local``.
"""

"""The ``switchyard`` command: one module per command or command group.

Operator-facing code: parsing arguments, printing reports, the demo, the
benchmark and the chaos harness. May import every other package; nothing
outside ``commands`` and ``tests`` imports from here.
"""

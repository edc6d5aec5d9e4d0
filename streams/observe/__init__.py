"""What the workers tell operators about themselves: traces (``tracing``).

May import processors, schemas and the OpenTelemetry API; the SDK and its exporter
are loaded only by a worker that exports (``tracing.configure_tracing``).
"""

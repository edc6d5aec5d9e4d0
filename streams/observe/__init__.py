"""What the workers tell operators about themselves: Prometheus metrics (``metrics``), the
state they read at scrape time (``collectors``), the HTTP endpoint that serves them
(``endpoint``), and traces (``tracing``).

May import processors, schemas and the OpenTelemetry API; the SDK and its exporter are
loaded only by a worker that exports (``tracing.configure_tracing``).
"""

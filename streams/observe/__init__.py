"""What the workers show about themselves: Prometheus metrics (``metrics``), the state they
read at scrape time (``collectors``) and the HTTP endpoint that serves them (``endpoint``)."""

# The Switchyard image for docker-compose.yml: one image, one command per service.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams streams
COPY processors processors
COPY schemas schemas
COPY sinks sinks
COPY simulator simulator
COPY config config
RUN pip install --no-cache-dir .
ENV SWITCHYARD_HOME=/var/lib/switchyard
ENTRYPOINT ["switchyard"]

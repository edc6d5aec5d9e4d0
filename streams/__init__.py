"""Kafka wiring: the topic catalogue, the embedded broker, the workers and the client."""

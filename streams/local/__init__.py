"""Running Switchyard on one machine: the embedded broker, a local stack, the environment.

Starts and finds OS processes and reads environment variables. May import
``streams.kafka`` and ``streams.topics``; never a worker's internals.
"""

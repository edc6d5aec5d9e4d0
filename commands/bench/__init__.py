"""``switchyard bench``: Switchyard, LiteLLM's Router and a bare client on one simulator."""

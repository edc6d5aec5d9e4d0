"""Silent-routing-failure detection: compare a recent telemetry window with a baseline.

``compare.detect_drift`` makes the comparisons; ``significance`` holds the tests
and Holm's correction; ``windows`` turns the command's options into two windows.
"""

from processors.drift.compare import detect_drift

__all__ = ["detect_drift"]

from streams.kafka.offsets import CommitTracker


def test_slow_job_holds_the_commit_position_until_it_finishes() -> None:
    tracker: CommitTracker[str] = CommitTracker()
    for offset in range(10, 15):
        tracker.started("p0", offset)
    for offset in (11, 12, 14):
        tracker.finished("p0", offset)
    assert tracker.positions() == {"p0": 10}  # 10 is still running
    tracker.finished("p0", 10)
    assert tracker.positions() == {"p0": 13}  # 13 is still running
    tracker.finished("p0", 13)
    assert tracker.positions() == {"p0": 15}
    assert tracker.in_flight == 0


def test_partitions_are_independent() -> None:
    tracker: CommitTracker[str] = CommitTracker()
    tracker.started("a", 0)
    tracker.started("b", 7)
    tracker.finished("b", 7)
    assert tracker.positions() == {"a": 0, "b": 8}

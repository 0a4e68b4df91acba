"""Broker data loss seen from the producer: an acknowledged offset that does not move on."""

from __future__ import annotations

from settlement.relay.offsets import OffsetWatch, Regression


def test_offsets_moving_forward_per_partition_are_fine() -> None:
    watch = OffsetWatch()
    assert watch.regression([(0, 0), (1, 0), (0, 1), (0, 5), (2, 0)]) is None
    assert watch.regression([(1, 1), (0, 6)]) is None
    assert watch.last == {0: 6, 1: 1, 2: 0}


def test_an_offset_acknowledged_again_is_a_regression() -> None:
    watch = OffsetWatch()
    assert watch.regression([(0, 0), (3, 7)]) is None
    assert watch.regression([(3, 8), (0, 0), (3, 9)]) == Regression(0, 0, 0)
    assert watch.last == {0: 0, 3: 8}  # nothing after the regression was taken


def test_a_partition_starting_again_from_zero_is_a_regression() -> None:
    watch = OffsetWatch()
    assert watch.regression([(2, 41)]) is None
    assert watch.regression([(2, 0)]) == Regression(partition=2, offset=0, acknowledged_before=41)

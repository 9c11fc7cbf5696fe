"""Closed integer intervals, as (start, end) tuples with start <= end."""

Interval = tuple[int, int]


def merge_intervals(intervals: list[Interval]) -> list[Interval]:
    """The union of `intervals` as a sorted list of disjoint intervals. Overlapping intervals and
    intervals that touch (one ends where the next starts) become one. The input, in any order,
    is left unchanged."""
    raise NotImplementedError


def total_length(intervals: list[Interval]) -> int:
    return sum(end - start for start, end in merge_intervals(intervals))

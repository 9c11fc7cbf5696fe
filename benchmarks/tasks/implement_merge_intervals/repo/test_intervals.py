from intervals import merge_intervals, total_length


def test_overlapping():
    assert merge_intervals([(1, 3), (2, 6), (8, 10)]) == [(1, 6), (8, 10)]


def test_touching():
    assert merge_intervals([(1, 2), (2, 3)]) == [(1, 3)]


def test_empty():
    assert merge_intervals([]) == []


def test_total_length():
    assert total_length([(0, 5), (3, 7)]) == 7

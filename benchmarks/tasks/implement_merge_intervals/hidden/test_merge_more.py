from intervals import merge_intervals


def test_unsorted_and_nested():
    assert merge_intervals([(10, 12), (1, 9), (2, 3), (9, 9)]) == [(1, 9), (10, 12)]


def test_input_unchanged():
    given = [(5, 6), (1, 2)]
    merge_intervals(given)
    assert given == [(5, 6), (1, 2)]


def test_disjoint_stay_apart():
    assert merge_intervals([(4, 5), (1, 2)]) == [(1, 2), (4, 5)]

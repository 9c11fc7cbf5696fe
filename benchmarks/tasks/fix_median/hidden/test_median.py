from stats import median


def test_two_values():
    assert median([1, 2]) == 1.5


def test_one_value():
    assert median([10]) == 10


def test_unsorted_even():
    assert median([9, 3, 1, 7, 5, 2]) == 4.0

import pytest

from durations import parse_duration


def test_more_values():
    assert parse_duration("10m") == 600
    assert parse_duration(" 3h0m ") == 10800
    assert parse_duration("100s") == 100
    assert parse_duration("1h1s") == 3601


@pytest.mark.parametrize("bad", ["h", "1h1h", "1.5h", "m10", "   "])
def test_more_invalid(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)

import pytest

from durations import format_duration, parse_duration


def test_hours_and_minutes():
    assert parse_duration("1h30m") == 5400


def test_seconds_only():
    assert parse_duration("45s") == 45


def test_all_units():
    assert parse_duration("2h5m10s") == 7510


def test_round_trip():
    assert parse_duration(format_duration(3725)) == 3725


@pytest.mark.parametrize("bad", ["", "10", "5x", "10s5m"])
def test_invalid(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)

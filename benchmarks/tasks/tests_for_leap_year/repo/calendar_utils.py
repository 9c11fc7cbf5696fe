"""Gregorian calendar helpers."""

DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def is_leap_year(year: int) -> bool:
    """Divisible by 4, except centuries, except those divisible by 400."""
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_in_month(year: int, month: int) -> int:
    """Days in `month` (1-12) of `year`; ValueError for another month number."""
    if not 1 <= month <= 12:
        raise ValueError(f"no month {month}")
    return 29 if month == 2 and is_leap_year(year) else DAYS[month - 1]

DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def is_leap_year(year):
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_in_month(year, month):
    if not 0 <= month <= 11:
        raise ValueError(f"no month {month}")
    return 29 if month == 1 and is_leap_year(year) else DAYS[month]

"""Split a list into numbered pages (the first page is page 1)."""

from math import ceil


def page_count(total: int, per_page: int) -> int:
    return max(1, ceil(total / per_page))


def paginate(items: list, page: int, per_page: int = 10) -> list:
    """The items on `page`; an empty list past the last page."""
    if page < 1:
        raise ValueError("pages start at 1")
    start = page * per_page
    return items[start:start + per_page]

"""Checks for book numbers."""


def is_valid_isbn10(code: str) -> bool:
    """Whether `code` is a valid ISBN-10. Hyphens and spaces are ignored; what remains must be
    nine digits followed by a check character, a digit or X (meaning 10). The number is valid
    when the sum of each character's value times its weight (10 for the first, down to 1 for
    the last) is divisible by 11. Anything else (wrong length, other characters, X anywhere but
    last) is invalid; the function never raises."""
    raise NotImplementedError

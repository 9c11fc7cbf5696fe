"""Text helpers."""


def word_count(text: str) -> int:
    return len(text.split())


def truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"

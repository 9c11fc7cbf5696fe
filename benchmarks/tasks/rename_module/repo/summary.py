from helpers import truncate, word_count


def summarize(title: str, body: str) -> str:
    return f"{truncate(title, 20)} ({word_count(body)} words)"

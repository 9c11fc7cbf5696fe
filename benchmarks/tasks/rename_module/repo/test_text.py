from feed import headlines
from helpers import truncate
from summary import summarize


def test_truncate():
    assert truncate("abcdef", 4) == "abc…"


def test_summarize():
    assert summarize("A title", "one two three") == "A title (3 words)"


def test_headlines():
    assert headlines(["x" * 40], 10) == ["x" * 9 + "…"]

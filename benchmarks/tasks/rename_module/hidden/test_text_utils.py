from feed import headlines
from summary import summarize
from text_utils import truncate, word_count


def test_moved():
    assert word_count("a b") == 2 and truncate("abc", 2) == "a…"
    assert summarize("t", "x y") == "t (2 words)" and headlines(["ab"], 5) == ["ab"]

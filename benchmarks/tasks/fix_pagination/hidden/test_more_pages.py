from pages import paginate


def test_past_the_end():
    assert paginate(list(range(5)), 3, 2) == [4]
    assert paginate(list(range(5)), 4, 2) == []


def test_second_page():
    assert paginate(list("abcdefg"), 2, 3) == ["d", "e", "f"]

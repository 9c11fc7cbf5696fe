from isbn import is_valid_isbn10


def test_valid():
    assert is_valid_isbn10("0306406152")


def test_valid_with_hyphens_and_x():
    assert is_valid_isbn10("0-8044-2957-X")


def test_wrong_check_digit():
    assert not is_valid_isbn10("0306406153")


def test_too_short():
    assert not is_valid_isbn10("030640615")

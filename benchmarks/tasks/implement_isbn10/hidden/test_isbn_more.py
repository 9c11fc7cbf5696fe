from isbn import is_valid_isbn10


def test_more_valid():
    assert is_valid_isbn10("3 598 21508 8")
    assert is_valid_isbn10("080442957X")


def test_more_invalid():
    assert not is_valid_isbn10("X804429570")
    assert not is_valid_isbn10("3-598-2X507-9")
    assert not is_valid_isbn10("")
    assert not is_valid_isbn10("35982150881")
    assert not is_valid_isbn10("3598215078")

from slug import slugify


def test_simple():
    assert slugify("Hello World") == "hello-world"


def test_punctuation_and_spaces():
    assert slugify("Hello,  World!") == "hello-world"


def test_accents():
    assert slugify("Crème brûlée") == "creme-brulee"

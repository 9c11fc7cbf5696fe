from slug import slugify


def test_leading_and_trailing():
    assert slugify("  --Python 3.12 -- released!! ") == "python-3-12-released"


def test_already_a_slug():
    assert slugify("already-a-slug") == "already-a-slug"

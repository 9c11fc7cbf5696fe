from api import handle_get
from users import display_name, get_usr


def test_get_usr():
    assert get_usr(1)["name"] == "Ada"


def test_display_name():
    assert display_name(2) == "Linus <linus@example.org>"


def test_api():
    assert handle_get("/users/1")[0] == 200
    assert handle_get("/users/9") == (404, {})

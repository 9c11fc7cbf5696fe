import api
import users


def test_new_name():
    assert users.get_user(2)["email"] == "linus@example.org"
    assert api.handle_get("/users/2") == (200, users.get_user(2))

"""An in-memory user directory."""

USERS = {1: {"name": "Ada", "email": "ada@example.org"}, 2: {"name": "Linus", "email": "linus@example.org"}}


def get_usr(user_id: int) -> dict:
    """The user with this id; KeyError when there is none."""
    return USERS[user_id]


def display_name(user_id: int) -> str:
    user = get_usr(user_id)
    return f"{user['name']} <{user['email']}>"

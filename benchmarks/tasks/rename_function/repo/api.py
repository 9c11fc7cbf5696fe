from users import get_usr


def handle_get(path: str) -> tuple[int, dict]:
    """GET /users/<id>"""
    try:
        return 200, get_usr(int(path.rsplit("/", 1)[1]))
    except (KeyError, ValueError):
        return 404, {}

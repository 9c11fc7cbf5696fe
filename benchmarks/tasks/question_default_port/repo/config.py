import os

BASE_PORT = 8000
ADMIN_OFFSET = 1
PUBLIC_OFFSET = 80


def port_from_env(default: int) -> int:
    return int(os.environ.get("APP_PORT", default))

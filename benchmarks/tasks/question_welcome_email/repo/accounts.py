from notifications import notify_signup


def sign_up(name: str, email: str) -> dict:
    user = {"name": name, "email": email}
    notify_signup(user)
    return user

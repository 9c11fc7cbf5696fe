from mailer import send_password_reset, send_welcome_email


def notify_signup(user: dict) -> None:
    send_welcome_email(user["email"], user["name"])


def notify_reset(user: dict, token: str) -> None:
    send_password_reset(user["email"], token)

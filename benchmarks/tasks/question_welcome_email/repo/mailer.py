import smtplib

SENDER = "hello@example.org"


def _send(to: str, subject: str, body: str) -> None:
    with smtplib.SMTP("localhost") as smtp:
        smtp.sendmail(SENDER, [to], f"Subject: {subject}\n\n{body}")


def send_welcome_email(to: str, name: str) -> None:
    _send(to, "Welcome!", f"Hi {name}, thanks for signing up.")


def send_password_reset(to: str, token: str) -> None:
    _send(to, "Reset your password", f"Your code: {token}")

from bank.models import Acct


def transfer(source: Acct, target: Acct, cents: int) -> None:
    """Move money; nothing changes when the source lacks it."""
    source.withdraw(cents)
    target.deposit(cents)


def open_joint(*owners: str) -> Acct:
    return Acct(owner=" & ".join(owners))

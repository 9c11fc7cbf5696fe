"""Bank accounts."""

from dataclasses import dataclass, field


class InsufficientFunds(Exception):
    pass


@dataclass
class Acct:
    owner: str
    balance: int = 0  # cents
    history: list[int] = field(default_factory=list)

    def deposit(self, cents: int) -> None:
        self.balance += cents
        self.history.append(cents)

    def withdraw(self, cents: int) -> None:
        if cents > self.balance:
            raise InsufficientFunds(f"{self.owner} has {self.balance} cents, not {cents}")
        self.balance -= cents
        self.history.append(-cents)

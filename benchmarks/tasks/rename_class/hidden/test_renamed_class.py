import bank
from bank.models import Account
from bank.transfers import open_joint


def test_new_name():
    assert bank.Account is Account
    assert isinstance(open_joint("p", "q"), Account)

import pytest

from bank import Acct
from bank.models import InsufficientFunds
from bank.transfers import open_joint, transfer


def test_transfer():
    a, b = Acct("a", 500), Acct("b")
    transfer(a, b, 200)
    assert (a.balance, b.balance) == (300, 200)


def test_insufficient():
    a, b = Acct("a", 100), Acct("b")
    with pytest.raises(InsufficientFunds):
        transfer(a, b, 200)
    assert (a.balance, b.balance) == (100, 0)


def test_joint():
    assert open_joint("x", "y").owner == "x & y"

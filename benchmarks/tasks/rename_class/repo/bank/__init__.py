from bank.models import Acct

__all__ = ["Acct"]

import settings
from invoice import invoice_total
from quote import quoted_price


def test_rate():
    assert settings.TAX_RATE == 0.2
    assert invoice_total(1000) == 1200
    assert quoted_price(1000) == 1200
    assert quoted_price(1000, discount=0.5) == 600

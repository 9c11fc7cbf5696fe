from invoice import invoice_total
from quote import quoted_price


def test_invoice_and_quote_agree():
    assert invoice_total(1000) == quoted_price(1000)


def test_discount_lowers_the_quote():
    assert quoted_price(1000, discount=0.5) < quoted_price(1000)

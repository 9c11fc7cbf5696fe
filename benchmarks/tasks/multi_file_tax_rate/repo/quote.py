"""Quotes show the price with tax, before an invoice exists."""


def quoted_price(net_cents: int, discount: float = 0.0) -> int:
    return round(net_cents * (1 - discount) * 1.19)

"""Invoices: net amounts plus tax, in cents."""


def invoice_total(net_cents: int) -> int:
    return round(net_cents * (1 + 0.19))


def tax_line(net_cents: int) -> str:
    return f"tax 19%: {round(net_cents * 0.19) / 100:.2f}"

from shop.models import Order


def format_order(order: Order) -> str:
    return f"#{order.id} {order.customer}: {order.amount_cents / 100:.2f}"


def format_orders(orders: list[Order]) -> str:
    return "\n".join(format_order(o) for o in orders)

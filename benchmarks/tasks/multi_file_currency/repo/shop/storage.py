"""Orders as JSON-ready dicts."""

from shop.models import Order


def to_record(order: Order) -> dict:
    return {"id": order.id, "customer": order.customer, "amount_cents": order.amount_cents}


def from_record(record: dict) -> Order:
    return Order(id=record["id"], customer=record["customer"], amount_cents=record["amount_cents"])

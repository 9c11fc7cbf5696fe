from shop.models import Order
from shop.report import format_order
from shop.storage import from_record, to_record


def test_default_is_eur():
    assert Order(1, "Ada", 100).currency == "EUR"


def test_round_trip_keeps_currency():
    order = Order(7, "Ada", 1250, currency="USD")
    assert from_record(to_record(order)) == order
    assert to_record(order)["currency"] == "USD"


def test_old_records_load_as_eur():
    assert from_record({"id": 3, "customer": "Bo", "amount_cents": 5}).currency == "EUR"


def test_report_shows_currency():
    assert format_order(Order(7, "Ada", 1250, currency="USD")) == "#7 Ada: 12.50 USD"
    assert format_order(Order(8, "Cy", 99)) == "#8 Cy: 0.99 EUR"

from shop.models import Order
from shop.report import format_orders
from shop.storage import from_record, to_record


def test_round_trip():
    order = Order(1, "Ada", 1250)
    assert from_record(to_record(order)) == order


def test_report_lists_orders():
    assert format_orders([Order(1, "Ada", 1250), Order(2, "Bo", 5)]).count("\n") == 1

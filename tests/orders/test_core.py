"""Orders' decisions without storage: which shipments will arrive, brief ETAs, arrival windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf import timestamp_pb2
from waybill.common.v1 import customer_pb2
from waybill.orders.v1 import orders_pb2

from orders import core
from runtime.errors import FailedPrecondition

S = customer_pb2.ShipmentStatus
PROMISED = datetime(2026, 3, 5, 18, tzinfo=UTC)
DELIVERED = datetime(2026, 3, 3, 11, 30, tzinfo=UTC)


def _ts(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _shipment(status: int, **kw: object) -> orders_pb2.Shipment:
    return orders_pb2.Shipment(
        awb="WB1234567890",
        status=status,  # type: ignore[arg-type]
        destination_region="US-CA",
        promised_time=_ts(PROMISED),
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("status", [S.SHIPMENT_STATUS_LOST, S.SHIPMENT_STATUS_RETURNED])
def test_lost_and_returned_shipments_will_not_arrive(status: int) -> None:
    assert not core.expects_arrival(status)  # type: ignore[arg-type]
    assert core.brief_eta(_shipment(status)) is None
    with pytest.raises(FailedPrecondition) as raised:
        core.estimate_arrival(_shipment(status))
    assert raised.value.reason == core.NO_ARRIVAL[status]  # type: ignore[index]


def test_the_reasons_name_the_status() -> None:
    assert core.NO_ARRIVAL == {
        S.SHIPMENT_STATUS_LOST: "SHIPMENT_LOST",
        S.SHIPMENT_STATUS_RETURNED: "SHIPMENT_RETURNED",
    }


@pytest.mark.parametrize(
    "status",
    [
        S.SHIPMENT_STATUS_LABEL_CREATED,
        S.SHIPMENT_STATUS_IN_TRANSIT,
        S.SHIPMENT_STATUS_OUT_FOR_DELIVERY,
        S.SHIPMENT_STATUS_DELAYED,
        S.SHIPMENT_STATUS_DELIVERY_ATTEMPTED,
    ],
)
def test_a_moving_shipment_briefs_its_promised_time(status: int) -> None:
    assert core.expects_arrival(status)  # type: ignore[arg-type]
    eta = core.brief_eta(_shipment(status))
    assert eta is not None
    assert eta.ToDatetime(UTC) == PROMISED


def test_a_delivered_shipment_briefs_its_delivery_time() -> None:
    shipment = _shipment(S.SHIPMENT_STATUS_DELIVERED, delivered_time=_ts(DELIVERED))
    eta = core.brief_eta(shipment)
    assert eta is not None
    assert eta.ToDatetime(UTC) == DELIVERED
    window = core.estimate_arrival(shipment)
    assert window.delivered
    assert window.window_start_time == window.window_end_time == shipment.delivered_time


def test_no_promise_no_brief_eta() -> None:
    shipment = orders_pb2.Shipment(awb="WB1234567890", status=S.SHIPMENT_STATUS_IN_TRANSIT)
    assert core.brief_eta(shipment) is None


def test_a_delay_widens_the_window_and_lowers_confidence() -> None:
    on_time = core.estimate_arrival(_shipment(S.SHIPMENT_STATUS_IN_TRANSIT))
    late = core.estimate_arrival(_shipment(S.SHIPMENT_STATUS_DELAYED))
    assert on_time.confidence == orders_pb2.ETA_CONFIDENCE_HIGH
    assert on_time.window_end_time.ToDatetime(UTC) == PROMISED
    assert late.confidence == orders_pb2.ETA_CONFIDENCE_LOW
    assert late.window_end_time.ToDatetime(UTC) == PROMISED + timedelta(days=1)


def test_another_country_adds_a_day() -> None:
    home = core.estimate_arrival(_shipment(S.SHIPMENT_STATUS_IN_TRANSIT), region="US-NY")
    abroad = core.estimate_arrival(_shipment(S.SHIPMENT_STATUS_IN_TRANSIT), region="DE-BE")
    gap = abroad.window_end_time.ToSeconds() - home.window_end_time.ToSeconds()
    assert gap == 86_400
    assert abroad.confidence == orders_pb2.ETA_CONFIDENCE_MEDIUM

"""OrdersService on a real aio server, on both stores."""

from __future__ import annotations

import grpc
import pytest
from waybill.common.v1 import customer_pb2, money_pb2
from waybill.orders.v1 import orders_pb2
from waybill.orders.v1 import orders_service_pb2 as pb

from runtime.errors import error_info_of, violations_of
from tests.orders.conftest import Env

S = customer_pb2.ShipmentStatus


async def _not_found(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    return raised.value


async def test_foreign_awb_is_indistinguishable_from_unknown(
    env: Env,
) -> None:
    stub, data = env.stub, env.data
    theirs = data.orders[0]
    other_user = await _not_found(
        stub.GetShipment(
            pb.GetShipmentRequest(tenant_id="acme-retail", user_id="acme-0006", awb=theirs.awb)
        )
    )
    other_tenant = await _not_found(
        stub.GetShipment(
            pb.GetShipmentRequest(tenant_id="globex-home", user_id=theirs.user_id, awb=theirs.awb)
        )
    )
    unknown = await _not_found(
        stub.GetShipment(
            pb.GetShipmentRequest(tenant_id="acme-retail", user_id="acme-0006", awb="WB0000000001")
        )
    )
    assert other_user.details() == other_tenant.details() == unknown.details()
    infos = {str(error_info_of(e)) for e in (other_user, other_tenant, unknown)}
    assert len(infos) == 1


async def test_invalid_requests_name_the_rule(
    env: Env,
) -> None:
    stub = env.stub
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetEta(
            pb.GetEtaRequest(
                tenant_id="acme-retail", user_id="acme-0001", awb="wb 1234", region="usa"
            )
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {(v.field, v.reason) for v in violations_of(raised.value)} == {
        ("awb", "string.pattern"),
        ("region", "string.pattern"),
    }
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.CreateRefund(
            pb.CreateRefundRequest(
                tenant_id="acme-retail",
                user_id="acme-0001",
                order_id="ORD-20260001",
                amount=money_pb2.Money(currency_code="USD", minor_units=0),
                reason=orders_pb2.REFUND_REASON_DELIVERY_FAILED,
                idempotency_key="k" * 20,
            )
        )
    assert [v.reason for v in violations_of(raised.value)] == ["refund.amount_positive"]


async def test_eta_and_photo_follow_the_shipment(
    env: Env,
) -> None:
    stub, data = env.stub, env.data
    owner = {o.awb: o.user_id for o in data.orders}
    tenant = {c.user_id: c.tenant_id for c in data.customers}
    for shipment in data.shipments:
        scope = {
            "tenant_id": tenant[owner[shipment.awb]],
            "user_id": owner[shipment.awb],
            "awb": shipment.awb,
        }
        if shipment.status == S.SHIPMENT_STATUS_DELIVERED:
            eta = (await stub.GetEta(pb.GetEtaRequest(**scope))).eta
            assert eta.delivered
            assert eta.window_end_time == shipment.delivered_time
            if shipment.has_delivery_photo:
                photo = (await stub.GetDeliveryPhoto(pb.GetDeliveryPhotoRequest(**scope))).photo
                assert photo.photo_ref.endswith(f"{shipment.awb}.jpg")
        elif shipment.status in (S.SHIPMENT_STATUS_LOST, S.SHIPMENT_STATUS_RETURNED):
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.GetEta(pb.GetEtaRequest(**scope))
            assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        else:
            eta = (await stub.GetEta(pb.GetEtaRequest(**scope))).eta
            assert not eta.delivered
            assert eta.window_end_time.ToSeconds() >= eta.window_start_time.ToSeconds()
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.GetDeliveryPhoto(pb.GetDeliveryPhotoRequest(**scope))
            info = error_info_of(raised.value)
            assert info is not None
            assert info.reason == "NOT_DELIVERED"


async def test_active_order_briefs_show_an_eta_only_for_shipments_that_will_arrive(
    env: Env,
) -> None:
    stub, data = env.stub, env.data
    shipments = {s.awb: s for s in data.shipments}
    seen: set[int] = set()
    for customer in data.customers:
        reply = await stub.ListActiveOrders(
            pb.ListActiveOrdersRequest(tenant_id=customer.tenant_id, user_id=customer.user_id)
        )
        for brief in reply.orders:
            shipment = shipments[brief.awb]
            seen.add(shipment.status)
            if shipment.status in (S.SHIPMENT_STATUS_LOST, S.SHIPMENT_STATUS_RETURNED):
                assert not brief.HasField("eta"), brief
            elif shipment.status == S.SHIPMENT_STATUS_DELIVERED:
                assert brief.eta == shipment.delivered_time
            else:
                assert brief.eta == shipment.promised_time
    assert S.SHIPMENT_STATUS_IN_TRANSIT in seen
    assert seen & {S.SHIPMENT_STATUS_LOST, S.SHIPMENT_STATUS_RETURNED}

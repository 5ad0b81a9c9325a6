"""The ops page's one call to the ledger: GetCostReport by team and UTC day.

A plain channel, as the edge's gateway client: the edge is not inside a gRPC call.
The report is a read, so it is retried on UNAVAILABLE through the service config.
"""

from __future__ import annotations

from datetime import datetime

import grpc
from google.protobuf import timestamp_pb2
from waybill.ledger.v1 import ledger_service_pb2 as pb
from waybill.ledger.v1 import ledger_service_pb2_grpc as pb_grpc

from gateway.edge.ops_figures import CostRow
from runtime import mesh
from runtime.client import service_config

LEDGER_SERVICE = mesh.spec("ledger").grpc_services[0]


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


class LedgerClient:
    """Cost reports for the ops page."""

    def __init__(self, target: str) -> None:
        self._channel = grpc.aio.insecure_channel(
            target,
            options=[
                ("grpc.enable_retries", 1),
                ("grpc.service_config", service_config([(LEDGER_SERVICE, "GetCostReport")])),
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000),
            ],
        )
        self._stub = pb_grpc.LedgerServiceStub(self._channel)

    async def cost_by_team_and_day(
        self, tenant: str, *, start: datetime, end: datetime, timeout_s: float
    ) -> list[CostRow]:
        """The tenant's requests and cost per team and UTC day in ``[start, end)``."""
        response: pb.GetCostReportResponse = await self._stub.GetCostReport(
            pb.GetCostReportRequest(
                tenant_id=tenant,
                start_time=_timestamp(start),
                end_time=_timestamp(end),
                group_by=[pb.GROUP_BY_TEAM, pb.GROUP_BY_DAY],
            ),
            timeout=timeout_s,
        )
        return [
            CostRow(
                tenant=tenant,
                team=row.keys[0],
                day=row.keys[1],
                requests=row.requests,
                cost_micros=row.cost.micro_units,
                currency=row.cost.currency_code,
            )
            for row in response.rows
            if len(row.keys) == 2
        ]

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

"""Wiring of the orders process."""

from __future__ import annotations

import logging
from pathlib import Path

from waybill.orders.v1 import orders_service_pb2_grpc as pb_grpc

from orders import seed
from orders.service import OrdersServicer
from orders.store import OrderStore
from runtime.server import Registration, serve
from runtime.settings import ServiceSettings, env_str

log = logging.getLogger("waybill.orders")


async def main() -> None:
    """Open the store, load the demo data set if it changed, serve."""
    settings = ServiceSettings.from_env("orders")
    data_dir = Path(env_str("WAYBILL_DATA_DIR", ".waybill/data"))
    store = OrderStore(data_dir / "orders.sqlite3")

    async def ready() -> None:
        data = seed.generate()
        loaded = store.load(data)
        log.info("data set ready", extra={"version": data.version, "loaded": loaded})

    async def on_stop() -> None:
        store.close()

    await serve(
        settings,
        [
            Registration(
                "waybill.orders.v1.OrdersService",
                pb_grpc.add_OrdersServiceServicer_to_server,
                OrdersServicer(store),
            )
        ],
        ready=ready,
        on_stop=on_stop,
    )

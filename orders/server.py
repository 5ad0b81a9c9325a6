"""Wiring of the orders process."""

from __future__ import annotations

import logging

from waybill.orders.v1 import orders_service_pb2_grpc as pb_grpc

from orders import seed
from orders.service import OrdersServicer
from orders.settings import OrdersSettings
from orders.sqlite_store import SqliteOrderStore
from orders.store import OrderStore
from runtime import mesh
from runtime.server import Registration, serve

log = logging.getLogger("waybill.orders")


async def main() -> None:
    """Open the store, load the demo data set if it changed, serve."""
    settings = OrdersSettings.from_env()
    store = await open_store(settings)

    async def ready() -> None:
        data = seed.generate(customers_per_tenant=settings.demo_customers)
        loaded = await store.load(data)
        log.info("data set ready", extra={"version": data.version, "loaded": loaded})

    async def on_stop() -> None:
        await store.close()

    await serve(
        settings.service,
        [
            Registration(
                mesh.spec("orders").grpc_services[0],
                pb_grpc.add_OrdersServiceServicer_to_server,
                OrdersServicer(store),
            )
        ],
        ready=ready,
        on_stop=on_stop,
    )


async def open_store(settings: OrdersSettings) -> OrderStore:
    """PostgreSQL with a DSN (the fleet), else the embedded SQLite file."""
    if settings.pg_dsn:
        from orders.pg_store import PostgresOrderStore  # psycopg only for the fleet

        return await PostgresOrderStore.open(
            settings.pg_dsn, schema=settings.pg_schema, max_size=settings.pg_pool
        )
    return SqliteOrderStore(settings.store_path)

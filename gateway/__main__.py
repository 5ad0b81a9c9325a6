"""python -m gateway"""

import os

# Before numpy loads: the answer cache's nearest-entry search is one small matrix product
# per lookup, and BLAS threads spinning beside it (and beside the embedder's onnxruntime)
# fight for the same two cores: at 10k entries one thread answers at p95 ~0.6 ms, two
# at ~12 ms on a busy 2-core machine (bench/scenario_cache.py).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from gateway.server import main
from runtime.server import run

run(main)

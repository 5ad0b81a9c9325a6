"""python -m router"""

import os

# Before numpy loads: the exemplar search is one small matrix product per batch, and
# BLAS threads spinning beside onnxruntime's would fight it for the same two cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from router.server import main
from runtime.server import run

run(main)

"""python -m workers.tracking"""

from runtime.server import run
from workers.tracking.server import main

run(main)

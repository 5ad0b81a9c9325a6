"""python -m workers.negotiation"""

from runtime.server import run
from workers.negotiation.server import main

run(main)

"""python -m workers.policy"""

from runtime.server import run
from workers.policy.server import main

run(main)

"""python -m orders"""

from orders.server import main
from runtime.server import run

run(main)

"""python -m router"""

from router.server import main
from runtime.server import run

run(main)

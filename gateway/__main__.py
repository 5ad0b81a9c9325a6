"""python -m gateway"""

from gateway.server import main
from runtime.server import run

run(main)

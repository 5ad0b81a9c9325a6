"""python -m ledger"""

from ledger.server import main
from runtime.server import run

run(main)

"""python -m retrieval"""

from retrieval.server import main
from runtime.server import run

run(main)

"""python -m guardrails"""

from guardrails.server import main
from runtime.server import run

run(main)

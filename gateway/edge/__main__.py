"""python -m gateway.edge"""

from gateway.edge.server import main

main()

"""python -m edge"""

from edge.server import main

main()

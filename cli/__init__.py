"""The ``waybill`` command line: run the mesh locally, probe it, chat with it."""

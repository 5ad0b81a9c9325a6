"""A small client of Waybill's gateway built on the waybill-contracts wheel alone."""

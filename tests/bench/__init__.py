"""Tests of the load generator (``bench/``)."""

"""Open-loop load generator for the Waybill gateway (``python -m bench``).

Arrivals follow a fixed schedule and every latency is measured from the
arrival's intended start time, so time spent queued behind the concurrency cap
or a slow dispatcher is counted (no coordinated omission).

Modules: ``cli`` (flags, exit codes), ``standard`` (the ``make bench`` set),
``runner`` (one run end to end), ``loadgen`` (dispatcher and turn reader),
``schedule`` (intended start times), ``scenarios`` (registry) with ``corpus``
(questions), ``gateway`` (channels, customer pool), ``endpoints`` (mesh.json
and keys), ``stats`` (nearest-rank percentiles), ``report`` (summary, JSON
line, tables).
"""

"""The audit log: one PII-free, hash-chained record per turn, kept on local disk.

- ``record``: what a turn's record may hold (identifiers, codes and numbers; no text) and
  its canonical bytes.
- ``chain``: the line format and ``hash = sha256(prev_hash, seq, canonical record)``.
- ``pseudonyms``: users and sessions as keyed pseudonyms; erasing a customer deletes the key.
- ``log``: the writer the gateway appends to (cheap for the caller; a thread writes,
  fsyncs in groups and rolls one segment file per UTC day).
- ``verify``: names the first altered, removed or reordered record.
- ``retention``: drops whole old segments, anchoring where the kept chain starts.
- ``export``: Parquet for DuckDB.

The package lives in ``runtime`` because it runs inside the gateway's process (no service
of its own: a turn must not wait on another hop to be audited).
"""

"""Answer caches: exact and semantic, partitioned by tenant, use case, intent and policy
version, in process (embedded) or in Redis (the fleet). See docs/caches.md."""

"""Who may watch and how much: signed playback tokens (``tokens``), per-account concurrent-stream
leases (``leases``: the pure table, an in-memory store for one node and a Redis store shared by
many), and the gates that apply them at the origin. Pure cores with thin adapters; imports point
down the data flow (origin and edge use access, never the reverse)."""

"""Who may watch and how much: signed playback tokens (``tokens``, ``keys``), per-account
concurrent-stream leases (``leases``: the pure table and in-memory store for one node;
``redis_leases``: the store shared by many nodes), and the gate that applies tokens at the origin
(``token_gate``, an implementation of the origin's ``Gate`` contract — the origin itself knows
nothing of tokens). Pure cores with thin adapters (docs/access.md)."""

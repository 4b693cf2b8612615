"""QoE from Common Media Client Data (CTA-5004): ``cmcd`` reads it from requests, ``aggregate``
turns requests into per-event figures (pure, time passed in), ``edge_logs`` feeds it the edges'
access logs and ``metrics`` exposes it as ``livecast_qoe_*``."""

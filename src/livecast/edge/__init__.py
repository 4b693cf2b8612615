"""The edge tier: nginx caches in front of the origin (docs/edge.md).

``nginx_conf`` renders an LL-HLS-correct nginx configuration (pure), ``accesslog`` reads what the
edges logged (pure), ``nginx`` runs Debian's nginx, ``tap`` counts the requests that reach the
origin, ``topology`` starts origin + optional shield + K edges (``livecast up``).
"""

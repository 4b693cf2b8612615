"""``livecast dashboard``: a live web page (server-sent events, one a second) of a rehearsal's
viewers and QoE and of each tier's load, from the Prometheus endpoints it scrapes.

:mod:`~livecast.dashboard.model` turns scrapes into time series (pure);
:mod:`~livecast.dashboard.wire` parses request heads and frames events (pure);
:mod:`~livecast.dashboard.server` serves pages and the event stream (asyncio);
:mod:`~livecast.dashboard.feed` scrapes once a second and serves the page (``page.html``).
"""

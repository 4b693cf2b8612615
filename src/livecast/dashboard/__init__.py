"""``livecast dashboard``: a live web page (server-sent events, one a second) of a rehearsal's
viewers and QoE and of each tier's load, from the Prometheus endpoints it scrapes.

:mod:`~livecast.dashboard.model` turns scrapes into time series (pure);
:mod:`~livecast.dashboard.sse` frames events (pure); :mod:`~livecast.dashboard.server` serves the
page, the event stream and ``/metrics``; :mod:`~livecast.dashboard.scraper` scrapes once a second.
"""

"""The fuzzing and bad-input campaign (issue 16): property-based and raw-bytes targets for every
parser that reads what the outside world sends — fMP4 boxes, playlists, LL-HLS directives, CMCD,
playback tokens — and for the origin's HTTP request path over a real socket.

* :mod:`livecast.fuzzing.core` — what a target is, how one input's outcome is classified, and
  the distinct line arcs executed in livecast's own modules;
* :mod:`livecast.fuzzing.runner` — every target, and the time-boxed campaign over a set of them;
* one module per target family: :mod:`~livecast.fuzzing.media`,
  :mod:`~livecast.fuzzing.playlists`, :mod:`~livecast.fuzzing.directives`,
  :mod:`~livecast.fuzzing.cmcd`, :mod:`~livecast.fuzzing.tokens`, :mod:`~livecast.fuzzing.http`.

``python -m livecast.fuzzing --budget SECONDS [--target NAME …] [--out DIR]`` runs it
(docs/fuzzing.md).
"""

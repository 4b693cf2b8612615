"""The scenario file shared by ``livecast rehearse`` and ``livecast simulate`` (pure).

One TOML file describes the night: the audience shape (``audience``), the player mix and
downlinks, the fault timeline (``timeline``), the SLOs and the target; the rehearsal runs it
against the real stack, the simulator (``[simulate]``) carries it to millions of viewers. Both
read it from here, so neither imports the other.
"""

"""The player model: a sans-IO LL-HLS / classic-HLS viewer policy (join, buffer, ABR, retries,
CMCD, QoE). Pure — no sockets, no clock, no global randomness; ``now`` and a seeded
``random.Random`` are passed in. Drivers (asyncio virtual viewers, Locust users, simulators)
perform the :class:`Request` objects it returns and report back what happened; what they all keep
beside a player — link pacing, lanes, deadlines, per-second sampling, the run's records — is
``player.harness``.
"""

from __future__ import annotations

from livecast.player.config import PlayerConfig, RetryPolicy
from livecast.player.model import Player
from livecast.player.requests import Request

__all__ = ["Player", "PlayerConfig", "Request", "RetryPolicy"]

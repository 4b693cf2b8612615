"""The player model: a sans-IO LL-HLS / classic-HLS viewer policy (join, buffer, ABR, retries,
CMCD, QoE). Pure — no sockets, no clock, no global randomness; ``now`` and a seeded
``random.Random`` are passed in. Drivers (asyncio virtual viewers, simulators) perform the
:class:`Request` objects it returns and report back what happened.
"""

from __future__ import annotations

from livecast.player.config import PlayerConfig, RetryPolicy
from livecast.player.model import Player
from livecast.player.qoe import QoeRecord
from livecast.player.requests import Request

__all__ = ["Player", "PlayerConfig", "QoeRecord", "Request", "RetryPolicy"]

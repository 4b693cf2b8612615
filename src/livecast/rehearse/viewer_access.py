"""What a virtual viewer shows an origin that checks who may watch (docs/access.md): a signed
playback token per viewer, its account one of the audience's ``accounts``, carried as the
``livecast_token`` cookie on every request — as the player page hands it to hls.js — and, when
the origin limits the streams per account, the lease heartbeats of ``player.session``.

Pure: the token's times come from the ``now`` passed in; the driver and the Locust user put
:meth:`ViewerAccess.cookie_header` on each connection of the viewer.
"""

from __future__ import annotations

from dataclasses import dataclass

from livecast.access.keys import KeyRing
from livecast.access.token_gate import COOKIE_NAME
from livecast.access.tokens import TokenClaims, issue
from livecast.errors import ConfigError

SESSION_PATH = "/session/heartbeat"


@dataclass(frozen=True, slots=True)
class ViewerAccess:
    """The audience's credentials: ``accounts`` accounts shared round robin by the viewers
    (viewer i watches on account ``i % accounts``), tokens for ``event`` signed by ``key_ring``
    and valid ``token_life`` seconds from the viewer's arrival; ``leases``: the viewers join
    and heartbeat their stream's lease."""

    key_ring: KeyRing
    event: str
    accounts: int
    leases: bool = False
    token_life: float = 6 * 3600.0

    def validate(self) -> ViewerAccess:
        if self.accounts < 1:
            raise ConfigError("access.accounts", f"{self.accounts} — at least one account")
        if not self.token_life > 0:
            raise ConfigError("access.token_life", f"{self.token_life} s is not positive")
        return self

    @property
    def session_url(self) -> str | None:
        """The lease endpoint the players join (relative to their entry URL), if any."""
        return SESSION_PATH if self.leases else None

    def account(self, index: int) -> str:
        return f"acct-{index % self.accounts:06d}"

    def token(self, index: int, session: str, now: float) -> str:
        claims = TokenClaims(
            event=self.event,
            account=self.account(index),
            session=session,
            exp=int(now + self.token_life),
        )
        return issue(claims, self.key_ring)

    def cookie_header(self, index: int, session: str, now: float) -> bytes:
        """The ``Cookie`` header line (CRLF-terminated) of viewer ``index``'s requests."""
        return cookie_header(self.token(index, session, now))


def session_id(index: int, seed: int) -> str:
    """A virtual viewer's session id (its CMCD ``sid`` and its token's session): the same in
    the driver and the Locust user."""
    return f"v{index:06d}-{seed:08x}"


def cookie_header(token: str) -> bytes:
    """The ``Cookie`` header line (CRLF-terminated) that carries ``token``."""
    return f"Cookie: {COOKIE_NAME}={token}\r\n".encode("ascii")

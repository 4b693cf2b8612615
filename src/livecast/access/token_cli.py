"""``livecast token``: issue, verify and make keys for signed playback tokens (docs/access.md).

  livecast token issue  --keys FILE --event E --account A --session S [--ttl 3600]
                        [--not-before-now]          print a token signed with the ring's key
  livecast token verify --keys FILE --event E TOKEN print its claims, or why it is refused
                        [--skew 60]                 (TOKEN "-": read it from stdin)
  livecast token keygen [--kid K]                   print a key-ring stanza with a new secret

``--keys`` may be left out when ``$LIVECAST_TOKEN_KEYS`` holds the ring. Exit codes: 0 success,
1 the token is refused, 2 bad input (a key file, an id, an option). The clock is read here, the
token core (:mod:`livecast.access.tokens`) is pure.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from livecast.access.keys import keygen_stanza, load_key_ring
from livecast.access.tokens import DEFAULT_SKEW, NAME, TokenClaims, issue, verify
from livecast.errors import AccessError, ConfigError

__all__ = ["add_parser", "main"]

DEFAULT_TTL = 3600
MAX_TTL = 366 * 86400


def add_parser(subparsers: Any) -> None:
    """``livecast token`` on the CLI's sub-command parsers."""
    parser = subparsers.add_parser(
        "token",
        help="signed playback tokens: issue, verify, keygen (docs/access.md)",
        description=__doc__.split("\n\n")[0],
    )
    actions = parser.add_subparsers(dest="token_action", required=True)
    issue_parser = actions.add_parser("issue", help="print a new playback token")
    verify_parser = actions.add_parser("verify", help="print a token's claims or its refusal")
    for action in (issue_parser, verify_parser):
        action.add_argument("--keys", default=None, help="key-ring TOML file (or the env)")
        action.add_argument("--event", required=True, help="the event (stream id) to watch")
    issue_parser.add_argument("--account", required=True, help="the viewer's account id")
    issue_parser.add_argument("--session", required=True, help="the viewing session id")
    issue_parser.add_argument(
        "--ttl", type=int, default=DEFAULT_TTL, help=f"seconds of validity (default {DEFAULT_TTL})"
    )
    issue_parser.add_argument(
        "--not-before-now", action="store_true", help="not valid before now (nbf = now)"
    )
    verify_parser.add_argument("token", help='the token ("-": read it from stdin)')
    verify_parser.add_argument(
        "--skew", type=float, default=DEFAULT_SKEW, help="seconds of clock skew tolerated"
    )
    keygen = actions.add_parser("keygen", help="print a key-ring stanza with a new secret")
    keygen.add_argument("--kid", default=None, help="the key id (default k<UTC date>)")


def main(args: argparse.Namespace, *, now: float | None = None, stdin: TextIO | None = None) -> int:
    """Run ``livecast token <action>``: 0 success, 1 refused, 2 bad input."""
    clock = time.time() if now is None else now
    try:
        if args.token_action == "keygen":
            print(keygen_stanza(args.kid, now=clock), end="")
            return 0
        if args.token_action == "issue":
            return _issue(args, clock)
        return _verify(args, clock, sys.stdin if stdin is None else stdin)
    except ConfigError as exc:
        print(f"livecast token: {exc}", file=sys.stderr)
        return 2


def _issue(args: argparse.Namespace, now: float) -> int:
    if not 0 < args.ttl <= MAX_TTL:
        raise ConfigError("ttl", f"{args.ttl} s is outside 1–{MAX_TTL}")
    ring = load_key_ring(args.keys)
    start = int(now)
    claims = TokenClaims(
        event=args.event,
        account=args.account,
        session=args.session,
        exp=start + args.ttl,
        nbf=start if args.not_before_now else 0,
    )
    print(issue(claims, ring))
    return 0


def _verify(args: argparse.Namespace, now: float, stdin: TextIO) -> int:
    if not 0 <= args.skew <= 3600:
        raise ConfigError("skew", f"{args.skew} s is outside 0–3600")
    if not NAME.fullmatch(args.event):
        raise ConfigError("event", "must be 1–64 characters of A–Z, a–z, 0–9, '_' or '-'")
    ring = load_key_ring(args.keys)
    token = stdin.readline(4096).strip() if args.token == "-" else args.token
    try:
        claims = verify(token, event=args.event, now=now, key_ring=ring, skew=args.skew)
    except AccessError as refusal:
        print(refusal.reason)
        print(f"livecast token: {refusal}", file=sys.stderr)
        return 1
    for name in ("kid", "event", "account", "session", "exp", "nbf"):
        print(f"{name}={getattr(claims, name)}")
    print(f"expires_in={claims.exp - now:.0f}")
    return 0

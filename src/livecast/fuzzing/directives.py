"""LL-HLS Playlist Delivery Directive targets (draft-pantos-hls-rfc8216bis §6.2.5).

§6.2.5.2: "_HLS_msn=<M> … _HLS_part=<N> … A Client MUST NOT request a Playlist with an _HLS_part
directive without an _HLS_msn directive"; "If the _HLS_msn is greater than the Media Sequence
Number of the last Media Segment in the current Playlist plus two, or if the _HLS_part exceeds the
last Partial Segment in the current Playlist by the Advance Part Limit, then the server SHOULD
immediately return Bad Request"; §6.2.5.1: "_HLS_skip=YES|v2".

Inputs are raw query strings: the three directives with valid, borderline and hostile values
(signs, spaces, non-ASCII digits, 17-digit numbers, percent-escapes, repeats), mixed with other
arguments (CMCD, cache busters), plus a live position and part target for the blocking check.
Properties: :func:`parse_directives` returns :class:`Directives` within range or raises
:class:`~livecast.errors.RequestError` with status 400, as does :func:`check_blocking_request`;
``_HLS_part`` never comes back without ``_HLS_msn``; rendering the parsed directives back into a
query parses to the same directives.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from livecast.errors import RequestError
from livecast.fuzzing.core import Target, stateless, violation
from livecast.hls.directives import (
    MAX_DIRECTIVE_VALUE,
    Directives,
    LivePosition,
    check_blocking_request,
    parse_directives,
)

NAMES = ("_HLS_msn", "_HLS_part", "_HLS_skip", "_HLS_msn", "_HLS_part", "_HLS_", "_hls_msn", "CMCD")
VALUES = (
    "0", "1", "7", "12345", "007", "-1", "+1", " 1", "1 ", "1.0", "1e3", "²", "١٢",
    "9007199254740992", "9007199254740993", "99999999999999999", "YES", "v2", "yes", "NO", "",
    "%31", "%2B1", "%00", "%", "%zz", "+", "1%20", "bl%3D1000%2Csid%3D%22a%22", "YES&_HLS_msn=1",
)  # fmt: skip


@dataclass(frozen=True)
class DirectiveInput:
    """A raw query, and the live position and part target the blocking check sees."""

    query: str
    position: LivePosition
    part_target: float


@st.composite
def queries(draw: st.DrawFn) -> str:
    pairs = draw(
        st.lists(
            st.tuples(
                st.sampled_from(NAMES) | st.text(max_size=8),
                st.sampled_from(VALUES) | st.text(max_size=8),
                st.sampled_from(("=", "=", "", "==")),
            ),
            max_size=5,
        )
    )
    separator = draw(st.sampled_from(("&", "&", "&&", ";")))
    return separator.join(f"{name}{eq}{value}" for name, value, eq in pairs)


directive_inputs = st.builds(
    DirectiveInput,
    queries(),
    st.builds(
        LivePosition,
        st.integers(0, 2**53),
        st.integers(-1, 20),
        st.integers(1, 20),
    ),
    st.sampled_from((0.2, 0.33334, 0.5, 1.0, 2.0)) | st.floats(0.01, 10.0),
)


def render(d: Directives) -> str:
    """The query asking for ``d`` (what a player sends)."""
    pairs = [("_HLS_msn", d.msn), ("_HLS_part", d.part), ("_HLS_skip", d.skip)]
    return "&".join(f"{name}={value}" for name, value in pairs if value is not None)


def _refused(error: RequestError) -> RequestError:
    violation(error.status == 400, f"a directive refused with {error.status}, not 400: {error}")
    return error


def run_directives(item: DirectiveInput) -> None:
    """Parse, check the ranges, round trip, then the blocking check (see the module)."""
    try:
        d = parse_directives(item.query)
    except RequestError as error:
        raise _refused(error) from None
    for value in (d.msn, d.part):
        violation(value is None or 0 <= value <= MAX_DIRECTIVE_VALUE, f"out of range: {d}")
    violation(d.skip in (None, "YES", "v2"), f"bad skip accepted: {d}")
    violation(d.part is None or d.msn is not None, f"_HLS_part without _HLS_msn: {d}")
    violation(parse_directives(render(d)) == d, f"round trip differs: {d} → {render(d)!r}")
    try:
        check_blocking_request(d, item.position, item.part_target)
    except RequestError as error:
        raise _refused(error) from None


TARGETS = (
    Target(
        "directives.llhls",
        "LL-HLS query directives → parse_directives, round trip, check_blocking_request",
        directive_inputs,
        stateless(run_directives),
        documented=(RequestError,),
    ),
)

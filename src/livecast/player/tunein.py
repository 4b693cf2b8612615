"""Low-Latency CDN Tune-in, as hls.js 1.7 does it (pure).

A playlist answered from a CDN cache may be older than it looks: hls.js adds the response's
``Age`` header (``getCacheAge``: ``parseFloat`` of the header, a missing or unparsable one is 0)
to the time since the playlist last advanced, and asks its next blocking reload for the playlist
that much further ahead (``base-playlist-controller.ts`` ``playlistLoaded``)::

    // Low-Latency CDN Tune-in: "age" header and time since load indicates we're behind by
    // more than one part
    // Update directives to obtain the Playlist that has the estimated additional duration of media

    cdnAge = details.age + details.ageHeader
    currentGoal = min(cdnAge - partTarget, targetduration * 1.5)
    if currentGoal > 0:
        // Omit segment and part directives when the last response was more than 3 target
        // durations ago,
        if cdnAge > targetduration * 3: msn = part = undefined
        // If we attempted to get the next or latest playlist update, but currentGoal increased,
        // then we either can't catchup, or the "age" header cannot be trusted.
        else if previous.tuneInGoal && cdnAge - partTarget > previous.tuneInGoal: currentGoal = 0
        else: msn += floor(currentGoal / targetduration)
              part += round((currentGoal % targetduration) / partTarget)
        details.tuneInGoal = currentGoal

``details.age`` is the time since the playlist last advanced (``advancedDateTime``, carried over
from the previous playlist when a reload did not advance), and all this happens only after a
playlist that advanced. hls.js adds the parts without carrying them into the next segment, so the
index may pass the segment's last part; :func:`within_reach` keeps such a directive one the
origin accepts (see there). While ``tuneInGoal`` exceeds ``max(PART-HOLD-BACK, 3 × PART-TARGET)``
hls.js loads no fragment (``waitForCdnTuneIn``): :func:`waits_for_tune_in`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from livecast.hls.directives import advance_part_limit
from livecast.hls.playlist import MediaPlaylist
from livecast.player.track import Position, TrackState, blocking_url, newest_position


@dataclass(slots=True)  # not frozen: one per playlist that advanced (read-only by convention)
class TuneIn:
    msn: int | None  # None: omit the directives, a plain reload
    part: int | None
    goal: float  # hls.js ``tuneInGoal`` to remember for the next playlist (0: none)


def cdn_tune_in(
    msn: int,
    part: int | None,
    cdn_age: float,
    part_target: float,
    target_duration: float,
    previous_goal: float,
) -> TuneIn:
    """The directives after tune-in for a blocking reload planned at ``(msn, part)``;
    ``cdn_age`` = seconds since the playlist advanced + its ``Age`` header."""
    goal = min(cdn_age - part_target, target_duration * 1.5)
    if goal <= 0:
        return TuneIn(msn, part, 0.0)
    if cdn_age > target_duration * 3:
        return TuneIn(None, None, goal)
    if previous_goal and cdn_age - part_target > previous_goal:
        return TuneIn(msn, part, 0.0)  # hls.js warns "CDN Tune-in goal increased" and gives up
    msn += math.floor(goal / target_duration)
    if part is not None:
        part += math.floor(math.fmod(goal, target_duration) / part_target + 0.5)  # JS Math.round
    return TuneIn(msn, part, goal)


def within_reach(msn: int, part: int | None, pl: MediaPlaylist) -> tuple[int, int | None]:
    """A tuned-in directive the origin cannot refuse (draft-pantos-hls-rfc8216bis §6.2.5.2: 400
    for an MSN past the last one + 2 or a part past the last by the Advance Part Limit;
    ``hls.directives.check_blocking_request``), judged against ``pl`` — the origin is at
    least that far.

    A part index past the segment's part count (hls.js adds parts without carrying) becomes
    part 0 of the next segment: that is how the origin reads such an index anyway
    (``packager.live.has_part``: the request is answered once the next segment has a part), so
    the answer comes at the same moment, without the risk of a 400. The count is the largest of
    the playlist's complete segments (else ⌈target duration / part target⌉)."""
    last = pl.last_part()
    if last is None or pl.part_inf is None:
        return msn, part
    last_msn, last_index = last
    if msn > last_msn + 2:
        return last_msn + 2, None if part is None else 0
    if part is None:
        return msn, part
    part_target = pl.part_inf.part_target
    counts = [len(seg.parts) for seg in pl.segments if seg.uri is not None and seg.parts]
    count = max(counts) if counts else math.ceil(pl.target_duration / part_target - 1e-6)
    if part >= count and msn + 1 <= last_msn + 2:
        msn, part = msn + 1, 0
    limit = advance_part_limit(part_target)
    if msn == last_msn:
        part = min(part, last_index + limit)
    elif msn > last_msn:
        part = min(part, limit - 1)  # the origin may have opened segment msn with no part yet
    return msn, part


def on_playlist(
    track: TrackState, previous: Position | None, now: float, age: float | None, low_latency: bool
) -> None:
    """A media playlist arrived (``track.playlist``; ``previous``: the newest position before it,
    ``age``: its ``Age`` header): note it and, as hls.js ``playlistLoaded`` does before the
    stream controller looks at it, work out the tune-in of the blocking reload that follows a
    playlist that advanced (``track.tuned_reload``) and the goal to remember."""
    pl = track.playlist
    assert pl is not None
    track.reloaded(previous, newest_position(pl), now, age)
    previous_goal, track.tune_in_goal, track.tuned_reload = track.tune_in_goal, 0.0, None
    control, upcoming = pl.server_control, pl.next_part()
    if not low_latency or control is None or not control.can_block_reload or pl.endlist:
        return
    if upcoming is None or pl.part_inf is None or track.advanced_at != now:
        return  # hls.js: delivery directives (and the tune-in) only after a playlist advanced
    cdn_age = max(now - track.advanced_at, 0.0) + track.age_header
    part_target = pl.part_inf.part_target
    tuned = cdn_tune_in(*upcoming, cdn_age, part_target, pl.target_duration, previous_goal)
    track.tune_in_goal = tuned.goal
    if tuned.msn is None:
        track.tuned_reload = (None, None)
    elif (tuned.msn, tuned.part) != upcoming:
        track.tuned_reload = within_reach(tuned.msn, tuned.part, pl)


def blocking_reload_url(track: TrackState, upcoming: Position) -> str:
    """URL of the blocking reload for the part after the newest listed one (``upcoming``), tuned
    in when :func:`on_playlist` said so — without directives for a plain reload."""
    tuned = track.tuned_reload
    if tuned is None:
        return blocking_url(track.playlist_url, *upcoming)
    if tuned[0] is None:
        return track.playlist_url
    return blocking_url(track.playlist_url, tuned[0], tuned[1])


def waits_for_tune_in(track: TrackState) -> bool:
    """hls.js ``waitForCdnTuneIn``: no fragment is loaded while the tune-in goal exceeds
    ``max(PART-HOLD-BACK, 3 × PART-TARGET)`` — the playlist asked for will say where to go."""
    if not track.tune_in_goal:
        return False
    pl = track.playlist
    if pl is None or pl.part_inf is None or pl.endlist:
        return False
    control = pl.server_control
    hold_back = control.part_hold_back if control and control.part_hold_back else 0.0
    return track.tune_in_goal > max(hold_back, 3 * pl.part_inf.part_target)


def parse_age(value: str | bytes | list[str] | None) -> float | None:
    """Seconds of an ``Age`` header (``None`` when absent or malformed: 0 to the player, as
    hls.js's NaN check makes it). Negative or non-finite values are malformed (RFC 9111 §5.1:
    ``Age = delta-seconds``); unlike JS ``parseFloat``, trailing garbage is too."""
    if isinstance(value, list):
        value = value[0] if value else None
    if not value:
        return None
    try:
        age = float(value)
    except ValueError:
        return None
    return age if 0.0 <= age < math.inf else None

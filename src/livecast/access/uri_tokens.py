"""Playback tokens on every URI of a playlist, for players that send no cookies — pure.

Safari's native player (AVPlayer) does not send the page's cookies with its media requests, so a
token given as the ``livecast_token`` cookie never reaches the origin or the edge with them. Such
a player is given the token in the query of the stream URL instead (``main.m3u8?token=…``), and
every playlist answered to a request whose query carries a token gets the same ``token=``
argument appended to each of its URIs — the variants of a multivariant playlist, the segments,
parts, init section, preload hints and rendition reports of a media playlist — so that whatever
the player requests next carries it too (docs/access.md, "Players without cookies").

Where the URIs are (RFC 8216bis, draft-pantos-hls-rfc8216bis):

* §4.1: "Each line is a URI, is blank, or starts with the character '#'." — every line that is
  neither blank nor starts with ``#`` is a URI (a variant, a segment);
* §4.2: "An attribute-list is a comma-separated list of attribute/value pairs with no
  whitespace." and a quoted-string "within a pair of double quotes ("). The following characters
  MUST NOT appear in a quoted-string: line feed (0xA), carriage return (0xD), or double quote
  (0x22)." — the attributes :data:`URI_ATTRIBUTES` of the tags :data:`URI_TAGS` (``EXT-X-MAP``,
  ``EXT-X-PART``, ``EXT-X-PRELOAD-HINT``, ``EXT-X-RENDITION-REPORT``, ``EXT-X-MEDIA``,
  ``EXT-X-I-FRAME-STREAM-INF``, ``EXT-X-SESSION-DATA``, the keys, content steering's
  ``SERVER-URI`` and an interstitial's ``X-ASSET-URI`` / ``X-ASSET-LIST`` in ``EXT-X-DATERANGE``)
  are URIs. Other tags are left as they are: an ``EXTINF`` title may well read ``URI="…"``;
* §4.1: "Lines in a Playlist file are terminated by either a single line feed character or a
  carriage return character followed by a line feed character." — both are kept.

Each URI gets ``?token=…`` (or ``&token=…`` when it has a query already, nothing more when it ends
in ``?`` or ``&``) before its fragment; the value is percent-encoded (RFC 3986 §2.3: everything but
the unreserved characters — a valid token is unreserved characters only, so it is unchanged). A
URI that names a host (``scheme://host/…``, ``//host/…``) is rewritten only when that host is the
request's own (``Host``): a token is a bearer credential, never handed to another host; a URI with
a scheme but no authority (``data:``, ``skd:``) and one starting with a variable reference
(``{$…}``, §4.3: it may expand to any host) are left alone too.

Cheap per request: a playlist is split once into a :class:`Template` (the text between insertion
points), kept in a small :class:`TemplateCache` keyed by the shared answer's bytes object; each
rewrite is then one ``bytes.join``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import quote, unquote

__all__ = [
    "MAX_TOKEN_ARGUMENT",
    "QUERY_NAME",
    "URI_ATTRIBUTES",
    "URI_TAGS",
    "Template",
    "TemplateCache",
    "add_argument",
    "compile_playlist",
    "query_argument",
    "token_argument",
]

QUERY_NAME = "token"
MAX_TOKEN_ARGUMENT = 512  # decoded: a token is at most 512 bytes (access.tokens.MAX_TOKEN_BYTES)
MAX_QUERY_ARGUMENTS = 64  # as the gate: a token after the 64th argument is not looked for
URI_TAGS = frozenset(
    {
        b"EXT-X-MAP",
        b"EXT-X-PART",
        b"EXT-X-PRELOAD-HINT",
        b"EXT-X-RENDITION-REPORT",
        b"EXT-X-MEDIA",
        b"EXT-X-I-FRAME-STREAM-INF",
        b"EXT-X-SESSION-DATA",
        b"EXT-X-KEY",
        b"EXT-X-SESSION-KEY",
        b"EXT-X-CONTENT-STEERING",
        b"EXT-X-DATERANGE",
    }
)
URI_ATTRIBUTES = frozenset({b"URI", b"SERVER-URI", b"X-ASSET-URI", b"X-ASSET-LIST"})
_TAG = re.compile(rb"#([A-Z0-9-]+):")
# §4.2: AttributeName is [A-Z0-9-]; a value is a quoted-string or runs to the next comma
_ATTRIBUTE = re.compile(rb'([A-Z0-9-]+)=("[^"\r\n]*"|[^,"\r\n]*)')
_SCHEME = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]*:")  # RFC 3986 §3.1
_AUTHORITY_END = re.compile(rb"[/?#]")
_TOKEN_TEXT = re.compile(rf"[A-Za-z0-9._~-]{{1,{MAX_TOKEN_ARGUMENT}}}")
_UNRESERVED = "-._~"  # RFC 3986 §2.3, besides ALPHA and DIGIT


@dataclass(frozen=True, slots=True)
class Insertion:
    """Where an argument goes: the separator it needs and, for a URI naming a host, that host
    (lower case) — the argument goes only to the request's own host."""

    separator: bytes  # b"?", b"&" or b""
    authority: bytes | None


@dataclass(frozen=True, slots=True)
class Template:
    """A playlist cut at the end of each URI's query: ``pieces`` around ``insertions``
    (``len(pieces) == len(insertions) + 1``)."""

    pieces: tuple[bytes, ...]
    insertions: tuple[Insertion, ...]

    def render(self, argument: bytes, host: bytes | None = None) -> bytes:
        """The playlist with ``argument`` (``name=value``, encoded) on every URI of ``host``."""
        if not self.insertions:
            return self.pieces[0]
        own = None if host is None else host.lower()
        out = [self.pieces[0]]
        for insertion, piece in zip(self.insertions, self.pieces[1:], strict=True):
            if insertion.authority is None or insertion.authority == own:
                out += (insertion.separator, argument)
            out.append(piece)
        return b"".join(out)


def _insertion(uri: bytes) -> tuple[int, Insertion] | None:
    """Where in ``uri`` the argument goes and how, or None when it is never rewritten."""
    if not uri or uri.startswith(b"{$"):
        return None
    authority: bytes | None = None
    scheme = _SCHEME.match(uri)
    rest = uri[scheme.end() :] if scheme else uri
    if rest.startswith(b"//"):
        end = _AUTHORITY_END.search(rest, 2)
        authority = rest[2 : end.start() if end else len(rest)].lower()
    elif scheme:  # a scheme without an authority (data:, skd:): not a URL of ours
        return None
    fragment = uri.find(b"#")
    at = len(uri) if fragment < 0 else fragment
    head = uri[:at]
    if b"?" not in head:
        separator = b"?"
    elif head.endswith((b"?", b"&")):
        separator = b""
    else:
        separator = b"&"
    return at, Insertion(separator, authority)


def _uri_spans(line: bytes) -> list[tuple[int, int]]:
    """The (start, end) of each URI in one line (without its line terminator)."""
    if not line or line.isspace():
        return []
    if not line.startswith(b"#"):
        return [(0, len(line))]
    tag = _TAG.match(line)
    if tag is None or tag[1] not in URI_TAGS:
        return []
    spans = []
    position = tag.end()
    while position < len(line):
        attribute = _ATTRIBUTE.match(line, position)
        if attribute is None:
            break  # not an attribute list after all: leave the rest alone
        value = attribute[2]
        if attribute[1] in URI_ATTRIBUTES and value.startswith(b'"') and len(value) >= 2:
            spans.append((attribute.start(2) + 1, attribute.end(2) - 1))
        position = attribute.end()
        if position < len(line):
            if line[position : position + 1] != b",":
                break
            position += 1
    return spans


def compile_playlist(playlist: bytes) -> Template:
    """``playlist`` cut at every URI's insertion point (see the module)."""
    pieces: list[bytes] = []
    insertions: list[Insertion] = []
    last = 0
    start = 0
    size = len(playlist)
    while start < size:
        newline = playlist.find(b"\n", start)
        end = size if newline < 0 else newline
        stop = end - 1 if end > start and playlist[end - 1 : end] == b"\r" else end
        line = playlist[start:stop]
        for first, after in _uri_spans(line):
            found = _insertion(line[first:after])
            if found is None:
                continue
            at = start + first + found[0]
            pieces.append(playlist[last:at])
            insertions.append(found[1])
            last = at
        start = end + 1
    pieces.append(playlist[last:])
    return Template(tuple(pieces), tuple(insertions))


def query_argument(name: str, value: str) -> bytes:
    """``name=value`` with both percent-encoded (RFC 3986 §2.1; unreserved characters kept)."""
    encoded = quote(name, safe=_UNRESERVED) + "=" + quote(value, safe=_UNRESERVED)
    return encoded.encode("ascii")


def add_argument(playlist: bytes, name: str, value: str, host: bytes | None = None) -> bytes:
    """``playlist`` with ``name=value`` appended to every URI (of ``host``; see the module)."""
    return compile_playlist(playlist).render(query_argument(name, value), host)


def token_argument(query: str) -> bytes | None:
    """The ``token=…`` to put on a playlist's URIs for a request with this raw ``query``: its
    first ``token`` argument (within the first 64), percent-decoded, re-encoded — None when there
    is none, or when it cannot be a token (not 1–512 characters of a token's alphabet: the gate
    refuses those; without a gate nothing is copied 10 KB at a time onto every URI)."""
    if "token=" not in query:
        return None
    for argument in query.split("&", MAX_QUERY_ARGUMENTS)[:MAX_QUERY_ARGUMENTS]:
        key, equals, raw = argument.partition("=")
        if equals and key == QUERY_NAME:
            if len(raw) > 3 * MAX_TOKEN_ARGUMENT:
                return None
            value = unquote(raw.replace("+", " "), errors="replace")
            if not _TOKEN_TEXT.fullmatch(value):
                return None
            return query_argument(QUERY_NAME, value)
    return None


class TemplateCache:
    """The templates of the last ``size`` playlists, keyed by their bytes object: a shared
    answer's body is one object, whose hash Python computes once."""

    def __init__(self, size: int = 64) -> None:
        self.size = max(1, size)
        self._templates: OrderedDict[bytes, Template] = OrderedDict()
        self.compiled = 0  # how many playlists were split (tests, metrics)

    def template(self, playlist: bytes) -> Template:
        template = self._templates.get(playlist)
        if template is not None:
            self._templates.move_to_end(playlist)
            return template
        template = compile_playlist(playlist)
        self.compiled += 1
        self._templates[playlist] = template
        if len(self._templates) > self.size:
            self._templates.popitem(last=False)
        return template

    def rewrite(self, playlist: bytes, argument: bytes, host: bytes | None = None) -> bytes:
        return self.template(playlist).render(argument, host)

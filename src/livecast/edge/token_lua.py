"""The playback token check at the nginx edge (lua-nginx-module) — rendered here, pure.

The edge checks a viewer's token itself, without a round trip per request (issue 15): the same
token format and rules as the origin (:mod:`livecast.access.tokens`, docs/access.md), computed in
LuaJIT with OpenSSL's ``HMAC()`` through the FFI (nginx links libcrypto already; lua-resty-string
is not packaged in Debian 12). A verdict is kept per (event, token) in the shared dict
``livecast_tokens`` — every worker of the edge shares it — until the token's ``exp`` plus the
skew, so a viewer's token costs one HMAC per edge, not one per part; a refusal is kept
:data:`REFUSAL_TTL` seconds (a flood of forged tokens costs one HMAC per distinct token).

Order of the checks, as the origin's: syntax, key, signature, event, time. The event is the
stream id of the path, read as ``origin.streams`` reads it: ``/live/<stream>/main.m3u8``,
``/live/<stream>/<rendition>/…`` name ``<stream>``; ``/live/main.m3u8`` and
``/live/<rendition>/…`` the default stream. A refusal is ``403`` with the reason code as body and
``X-Livecast-Reason``, ``Cache-Control: no-store`` (never cached: the cached objects behind it
stay shared by every viewer — the cache key holds no token).

Revocations: one worker polls the admin API (``GET /admin/v1/revocations?since=``) twice a second
into the shared dict ``livecast_revoked``, consulted after the cached verdict (:data:`LUA_POLLER`).
Players without cookies: a valid token from the query goes upstream as the cookie (the query
without it), and the playlist locations' body filter puts it on every URI of the answer
(:data:`LUA_REWRITE_INIT`, the rules of ``access.uri_tokens``). docs/access.md, "Edge check".

The keys reach nginx as a Lua file of their own (``token_keys.lua``, mode 0600, in the edge's
prefix): ``return { ["kid"] = "<base64 secret>", … }``, read once by ``init_by_lua``.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass
from pathlib import Path

from livecast.access.keys import KeyRing
from livecast.access.tokens import DEFAULT_SKEW, MAX_TOKEN_BYTES

SHARED_DICT = "livecast_tokens"
SHARED_DICT_MB = 8  # ≈ 40,000 verdicts (a token and its event ≈ 200 bytes)
REFUSAL_TTL = 5.0  # seconds a refused (event, token) is answered from the dict
KEYS_FILE = "token_keys.lua"

# init_by_lua: appended inside the tier's own init block (nginx allows one per http block).
LUA_TOKEN_INIT = """
        local ffi = require "ffi"
        ffi.cdef[[
            typedef struct evp_md_st EVP_MD;
            const EVP_MD *EVP_sha256(void);
            unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                                const unsigned char *d, size_t n, unsigned char *md,
                                unsigned int *md_len);
            unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md);
        ]]
        local md, md_len = ffi.new("unsigned char[32]"), ffi.new("unsigned int[1]")
        local keys = {}
        for kid, secret in pairs(dofile("{keys_file}")) do keys[kid] = ngx.decode_base64(secret) end
        local verdicts = ngx.shared.{shared_dict}
        local skew, max_bytes, refusal_ttl = {skew}, {max_bytes}, {refusal_ttl}
        local default_stream = "{default_stream}"
        local url_safe = {["+"] = "-", ["/"] = "_"}
        local function sign(key, text)
            ffi.C.HMAC(ffi.C.EVP_sha256(), key, #key, text, #text, md, md_len)
            return (ngx.encode_base64(ffi.string(md, md_len[0]), true):gsub("[+/]", url_safe))
        end
        -- access.tokens.token_id: 32 hex digits of the token's SHA-256 (what a revocation names)
        local function token_id(token)
            ffi.C.SHA256(token, #token, md)
            return (ffi.string(md, 16):gsub(".", function(c)
                return string.format("%02x", c:byte())
            end))
        end
        local function field(text) return #text >= 1 and #text <= 64 end
        local function canonical(digits, zero_ok)
            if digits == "0" then return zero_ok end
            return #digits <= 16 and digits:sub(1, 1) ~= "0"
        end
        local id = "([%w_%-]+)"
        local shape = "^v1%." .. id .. "%." .. id .. "%." .. id .. "%." .. id
            .. "%.(%d+)%.(%d+)%.([%w_%-]+)$"
        -- the reason the token is refused for this event now, or nil and its expiry
        local function judge(token, event, now)
            if #token > max_bytes then return "malformed" end
            local kid, ev, account, session, exp, nbf, sig = token:match(shape)
            if kid == nil or not (field(kid) and field(ev) and field(account) and field(session))
                or not canonical(exp, false) or not canonical(nbf, true) or #sig ~= 43 then
                return "malformed"
            end
            local key = keys[kid]
            if key == nil then return "unknown_key" end
            if sign(key, token:sub(1, #token - 44)) ~= sig then return "bad_signature" end
            if ev ~= event then return "wrong_event" end
            exp, nbf = tonumber(exp), tonumber(nbf)
            if nbf > 0 and now < nbf - skew then return "not_yet_valid" end
            if now >= exp + skew then return "expired" end
            return nil, exp, session
        end
        local function event_of(uri)
            local first, second, third = uri:match("^/live/([^/]+)/([^/]+)/([^/]+)$")
            if first ~= nil then return first end
            first, second = uri:match("^/live/([^/]+)/([^/]+)$")
            if first ~= nil and (second == "main.m3u8" or second == "recording.json") then
                return first
            end
            return default_stream
        end
        local function refuse(reason)
            ngx.status = 403
            ngx.header["X-Livecast-Reason"] = reason
            ngx.header["Cache-Control"] = "no-store"
            ngx.header["Content-Type"] = "text/plain"
            ngx.print(reason, "\\n")
            return ngx.exit(403)
        end
        -- a token from the query: handed upstream as the cookie, and the query without it, so
        -- that the origin answers the shared (un-rewritten) playlist the cache keeps for every
        -- viewer; on a playlist, kept for the body filter that puts it on every URI
        local function from_query(token)
            local kept = {}
            for argument in string.gmatch(ngx.var.args or "", "[^&]+") do
                if argument:sub(1, 6) ~= "token=" then kept[#kept + 1] = argument end
            end
            ngx.req.set_uri_args(table.concat(kept, "&"))
            ngx.req.set_header("Cookie", "livecast_token=" .. token)
            if ngx.var.uri:sub(-5) == ".m3u8" then
                ngx.var.livecast_token_arg = "token=" .. token
            end
        end
        function livecast_token_check()
            local token = ngx.var.arg_token
            local query = token ~= nil
            if query then token = ngx.unescape_uri(token)
            else token = ngx.var.cookie_livecast_token end
            if token == nil or token == "" then return refuse("missing") end
            local event = event_of(ngx.var.uri)
            local key = event .. "|" .. token
            -- a valid verdict is "+<session> <token id>" (what a revocation names), a refusal
            -- its reason
            local verdict = verdicts:get(key)
            if verdict == nil then
                local now = ngx.time()
                local reason, exp, session = judge(token, event, now)
                if reason ~= nil then
                    verdicts:set(key, reason, refusal_ttl)
                    return refuse(reason)
                end
                verdict = "+" .. session .. " " .. token_id(token)
                verdicts:set(key, verdict, math.max(1, exp + skew - now))
            elseif verdict:byte(1) ~= 43 then
                return refuse(verdict)
            end
            if livecast_revoked(verdict) then return refuse("revoked") end
            if query then from_query(token) end
        end"""


# Playlist URIs for players without cookies (access.uri_tokens, the same rules in Lua): every URI
# line, and the URI attributes of the tags that have them, get the token argument before their
# fragment — not a URI naming another host than the request's, not data:/skd:, not one starting
# with a variable reference.
LUA_REWRITE_INIT = r"""
        local uri_tags = {}
        for _, tag in ipairs({"EXT-X-MAP", "EXT-X-PART", "EXT-X-PRELOAD-HINT",
            "EXT-X-RENDITION-REPORT", "EXT-X-MEDIA", "EXT-X-I-FRAME-STREAM-INF",
            "EXT-X-SESSION-DATA", "EXT-X-KEY", "EXT-X-SESSION-KEY", "EXT-X-CONTENT-STEERING",
            "EXT-X-DATERANGE"}) do uri_tags[tag] = true end
        local uri_attributes = {["URI"] = true, ["SERVER-URI"] = true, ["X-ASSET-URI"] = true,
            ["X-ASSET-LIST"] = true}
        local function with_argument(uri, arg, host)
            if uri == "" or uri:sub(1, 2) == "{$" then return uri end
            local scheme = uri:match("^[%a][%w+.-]*:")
            local rest = scheme and uri:sub(#scheme + 1) or uri
            if rest:sub(1, 2) == "//" then
                if rest:match("^//([^/?#]*)"):lower() ~= host then return uri end
            elseif scheme then
                return uri
            end
            local head, tail = uri, ""
            local hash = uri:find("#", 1, true)
            if hash then head, tail = uri:sub(1, hash - 1), uri:sub(hash) end
            local separator = "?"
            if head:find("?", 1, true) then
                local last = head:sub(-1)
                separator = (last == "?" or last == "&") and "" or "&"
            end
            return head .. separator .. arg .. tail
        end
        local function rewrite_line(line, arg, host)
            if not line:find("%S") then return line end
            if line:byte(1) ~= 35 then return with_argument(line, arg, host) end
            local tag, pos = line:match("^#([A-Z0-9-]+):()")
            if tag == nil or not uri_tags[tag] then return line end
            local out, size = {line:sub(1, pos - 1)}, #line
            while pos <= size do
                local name, at = line:match("^([A-Z0-9-]+)=()", pos)
                if name == nil then break end
                local value, after = line:match('^("[^"\r\n]*")()', at)
                if value == nil then value, after = line:match('^([^,"\r\n]*)()', at) end
                if uri_attributes[name] and #value >= 2 and value:byte(1) == 34 then
                    value = '"' .. with_argument(value:sub(2, -2), arg, host) .. '"'
                end
                out[#out + 1] = line:sub(pos, at - 1) .. value
                pos = after
                if pos <= size then
                    if line:byte(pos) ~= 44 then break end
                    out[#out + 1] = ","
                    pos = pos + 1
                end
            end
            out[#out + 1] = line:sub(pos)
            return table.concat(out)
        end
        function livecast_rewrite_playlist(body, arg, host)
            host = (host or ""):lower()
            local out, start, size = {}, 1, #body
            while start <= size do
                local newline = body:find("\n", start, true)
                local stop = newline and newline - 1 or size
                local line_end = stop
                if stop >= start and body:byte(stop) == 13 then line_end = stop - 1 end
                out[#out + 1] = rewrite_line(body:sub(start, line_end), arg, host)
                out[#out + 1] = body:sub(line_end + 1, newline or size)
                start = (newline or size) + 1
            end
            return table.concat(out)
        end"""
# header and body filter of the playlist locations: a 200 playlist for a request that had the
# token in its query (livecast_token_check kept it in $livecast_token_arg) is collected and
# rewritten; its length changes, and it now carries a credential (private)
LUA_REWRITE_HEADER = """local arg = ngx.var.livecast_token_arg
                if arg ~= "" and ngx.status == 200
                    and (ngx.header["Content-Type"] or ""):lower():find("mpegurl", 1, true) then
                    ngx.ctx.livecast_rewrite = {}
                    ngx.header["Content-Length"] = nil
                    local cache = ngx.header["Cache-Control"]
                    if cache then
                        ngx.header["Cache-Control"] = (cache:gsub("public", "private"))
                    end
                end"""
LUA_REWRITE_BODY = """local parts = ngx.ctx.livecast_rewrite
                if parts ~= nil then
                    if ngx.arg[1] ~= "" then parts[#parts + 1] = ngx.arg[1] end
                    if ngx.arg[2] then
                        ngx.arg[1] = livecast_rewrite_playlist(table.concat(parts),
                            ngx.var.livecast_token_arg, ngx.var.http_host)
                    else
                        ngx.arg[1] = nil
                    end
                end"""
TOKEN_ARG_VARIABLE = 'set $livecast_token_arg "";'  # server level: survives ngx.exec

# Revocations (access.tokens.RevocationList through the admin API): one worker of each edge polls
# GET /admin/v1/revocations?since=<seq> every POLL_INTERVAL seconds over a cosocket (a minimal
# HTTP/1.1 client: lua-resty-http is not packaged in Debian 12) and keeps every revoked session
# ("s:<session>") and token id ("t:<token_id>") in the shared dict REVOKED_DICT until it runs
# out; each request with a valid verdict then looks its session and token id up there (two dict
# lookups, no round trip). The answer's JSON is livecast's own (admin.api), read with patterns.
REVOKED_DICT = "livecast_revoked"
REVOKED_DICT_MB = 12  # ≈ 100,000 entries (RevocationList.max_entries)
POLL_INTERVAL = 0.5  # seconds: a revocation reaches the edges within about a second
POLL_TIMEOUT = 1.0  # seconds per socket operation
SOURCE_FILE = "revocations.lua"
MAX_PAGES = 200  # per poll: 200 answers of admin.api's REVOCATIONS_PAGE entries
LUA_REVOKED_CHECK = """
        local revoked = ngx.shared.{revoked_dict}
        function livecast_revoked(verdict)
            local space = verdict:find(" ", 2, true)
            return revoked:get("s:" .. verdict:sub(2, space - 1)) ~= nil
                or revoked:get("t:" .. verdict:sub(space + 1)) ~= nil
        end"""
LUA_NO_REVOCATIONS = """
        function livecast_revoked(verdict) return false end"""
LUA_POLLER = r"""init_worker_by_lua_block {
        if ngx.worker.id() ~= 0 then return end
        local state = ngx.shared.{revoked_dict}
        local source = dofile("{source_file}")
        local request = "GET /admin/v1/revocations?since=%d HTTP/1.1\r\nHost: " .. source.host
            .. "\r\nAuthorization: Bearer " .. source.secret .. "\r\n\r\n"
        local function page(sock, since)
            local ok, err = sock:send(string.format(request, since))
            if not ok then return nil, err end
            local status, err = sock:receive("*l")
            if not status then return nil, err end
            local length
            while true do
                local line, err = sock:receive("*l")
                if not line then return nil, err end
                if line == "" then break end
                local n = line:lower():match("^content%-length:%s*(%d+)")
                if n then length = tonumber(n) end
            end
            if length == nil or length > 4194304 then return nil, "no usable Content-Length" end
            local body, err = sock:receive(length)
            if not body then return nil, err end
            if not status:find("^HTTP/1%.1 200 ") then return nil, status end
            return body
        end
        local busy = false
        local function poll(premature)
            if premature or busy then return end
            busy = true
            local sock = ngx.socket.tcp()
            sock:settimeout({timeout_ms})
            local ok, err = sock:connect(source.host, source.port)
            for _ = 1, {max_pages} do
                if not ok then break end
                local body
                body, err = page(sock, state:get("seq") or 0)
                if body == nil then ok = false break end
                local epoch, seq, more = body:match('^{"epoch":"(%w+)","seq":(%d+),"more":(%a+)')
                if epoch == nil then ok, err = false, "unexpected answer" break end
                if epoch ~= state:get("epoch") then  -- a new list (the admin API restarted)
                    state:set("epoch", epoch)
                    state:set("seq", 0)
                else
                    local now = ngx.time()
                    local entry = '{"kind":"(%a)%a*","id":"([%w_%-]+)","until":(%d+)}'
                    for kind, id, untl in body:gmatch(entry) do
                        local ttl = tonumber(untl) - now
                        if ttl > 0 then state:set(kind .. ":" .. id, true, ttl) end
                    end
                    state:set("seq", tonumber(seq))
                    if more ~= "true" then break end
                end
            end
            if ok then sock:setkeepalive(30000, 1)
            else
                sock:close()
                ngx.log(ngx.WARN, "livecast revocations: ", err)
            end
            busy = false
        end
        ngx.timer.at(0, poll)
        ngx.timer.every({interval}, poll)
    }"""


def token_init(
    keys_file: Path,
    *,
    skew: float = DEFAULT_SKEW,
    default_stream: str = "main",
    revocations: bool = False,
) -> str:
    """The Lua of ``init_by_lua`` that defines ``livecast_token_check()``, the revocation lookup
    (``revocations``: fed by :func:`poller_init_worker`) and ``livecast_rewrite_playlist``."""
    check = LUA_REVOKED_CHECK if revocations else LUA_NO_REVOCATIONS
    return (
        LUA_TOKEN_INIT.replace("{keys_file}", str(keys_file))
        .replace("{shared_dict}", SHARED_DICT)
        .replace("{skew}", f"{skew:g}")
        .replace("{max_bytes}", str(MAX_TOKEN_BYTES))
        .replace("{refusal_ttl}", f"{REFUSAL_TTL:g}")
        .replace("{default_stream}", default_stream)
        + check.replace("{revoked_dict}", REVOKED_DICT)
        + LUA_REWRITE_INIT
    )


@dataclass(frozen=True, slots=True)
class RevocationSource:
    """Where an edge reads revocations: the admin API's address and a bearer secret that may
    read them (``AdminApi.allow_reader``)."""

    host: str
    port: int
    secret: str
    interval: float = POLL_INTERVAL
    timeout: float = POLL_TIMEOUT

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"revocations port {self.port} is not a TCP port")
        if not re.fullmatch(r"[A-Za-z0-9.:\[\]-]{1,253}", self.host):
            raise ValueError(f"unusable revocations host {self.host!r}")
        if not re.fullmatch(r"[A-Za-z0-9._~+/-]{16,512}=*", self.secret):
            raise ValueError("the revocations secret must be 16–512 token68 characters")
        if not 0.05 <= self.interval <= 60 or not 0.05 <= self.timeout <= 60:
            raise ValueError("interval and timeout are 0.05–60 s")


def poller_init_worker(source: RevocationSource, source_file: Path) -> str:
    """The ``init_worker_by_lua_block`` that polls ``source`` (its secret in ``source_file``)."""
    return (
        LUA_POLLER.replace("{revoked_dict}", REVOKED_DICT)
        .replace("{source_file}", str(source_file))
        .replace("{timeout_ms}", str(round(source.timeout * 1000)))
        .replace("{max_pages}", str(MAX_PAGES))
        .replace("{interval}", f"{source.interval:g}")
    )


def write_source_file(source: RevocationSource, directory: Path) -> Path:
    """Where and with which secret to poll, as nginx's Lua reads it (mode 0600); its path."""
    path = directory / SOURCE_FILE
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(
            f'return {{ host = "{source.host}", port = {source.port}, '
            f'secret = "{source.secret}" }}\n'
        )
    return path


TOKEN_CHECK_CALL = "livecast_token_check()"  # first statement of an access_by_lua block


def shared_dict_line(revocations: bool = False) -> str:
    lines = f"    lua_shared_dict {SHARED_DICT} {SHARED_DICT_MB}m;"
    if revocations:
        lines += f"\n    lua_shared_dict {REVOKED_DICT} {REVOKED_DICT_MB}m;"
    return lines


def write_keys_file(ring: KeyRing, directory: Path) -> Path:
    """The key ring as nginx's Lua reads it, readable by its owner only; its path."""
    path = directory / KEYS_FILE
    entries = ", ".join(
        f'["{kid}"] = "{base64.b64encode(ring.key(kid) or b"").decode()}"' for kid in ring.kids
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(f"return {{ {entries} }}\n")
    return path

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

Not at the edge (yet): revocations — a revoked token still passes an edge until it expires; the
origin refuses it at once (docs/access.md, "Edge check").

The keys reach nginx as a Lua file of their own (``token_keys.lua``, mode 0600, in the edge's
prefix): ``return { ["kid"] = "<base64 secret>", … }``, read once by ``init_by_lua``.
"""

from __future__ import annotations

import base64
import os
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
            return nil, exp
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
        function livecast_token_check()
            local token = ngx.var.arg_token
            if token ~= nil then token = ngx.unescape_uri(token)
            else token = ngx.var.cookie_livecast_token end
            if token == nil or token == "" then return refuse("missing") end
            local event = event_of(ngx.var.uri)
            local key = event .. "|" .. token
            local verdict = verdicts:get(key)
            if verdict == true then return end
            if verdict ~= nil then return refuse(verdict) end
            local now = ngx.time()
            local reason, exp = judge(token, event, now)
            if reason ~= nil then
                verdicts:set(key, reason, refusal_ttl)
                return refuse(reason)
            end
            verdicts:set(key, true, math.max(1, exp + skew - now))
        end"""


def token_init(keys_file: Path, *, skew: float = DEFAULT_SKEW, default_stream: str = "main") -> str:
    """The Lua of ``init_by_lua`` that defines ``livecast_token_check()`` (see the module)."""
    return (
        LUA_TOKEN_INIT.replace("{keys_file}", str(keys_file))
        .replace("{shared_dict}", SHARED_DICT)
        .replace("{skew}", f"{skew:g}")
        .replace("{max_bytes}", str(MAX_TOKEN_BYTES))
        .replace("{refusal_ttl}", f"{REFUSAL_TTL:g}")
        .replace("{default_stream}", default_stream)
    )


TOKEN_CHECK_CALL = "livecast_token_check()"  # first statement of an access_by_lua block


def shared_dict_line() -> str:
    return f"    lua_shared_dict {SHARED_DICT} {SHARED_DICT_MB}m;"


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

"""The edges' and shield's own metrics (lua-nginx-module) — rendered here, pure.

Every nginx tier with the Lua modules counts its requests in the shared dict
:data:`SHARED_DICT` (one set of counters for all the tier's workers) from ``log_by_lua``, and
answers ``GET /edge/metrics`` (:data:`METRICS_PATH`) in the Prometheus text format 0.0.4 — never
cached, not logged. Per request: five or seven ``incr`` on the shared dict (request count, body
bytes, a duration bucket and its sum, and the upstream time's bucket and sum when the upstream
was asked); a histogram's buckets are stored per bucket and made cumulative when rendered, and
its ``_count`` is their total. What that costs: benchmarks/bench_edge_metrics.py
(docs/benchmarks.md, "Edge metrics").

Prometheus exposition format (text 0.0.4): "``metric_name [ "{" label_name "=" `"` label_value
`"` { "," label_name "=" `"` label_value `"` } [ "," ] "}" ] value [ timestamp ]``"; "All lines
for a given metric must be provided as one single group, with the optional HELP and TYPE lines
first"; a histogram has "a ``_bucket`` … with ``le`` … cumulative counters …, including
``{le="+Inf"}`` …, ``_sum`` … and ``_count`` (identical to ``le="+Inf"``)".

lua-nginx-module doc, ``ngx.shared.DICT.incr``: "Increments the (numerical) value for key … by
the step value value. … when the key does not exist … and the init argument is … a number …
a new key with the value init + value is created" — so a first request creates its counter.

The object kind (label ``kind``) is read from the path as the rest of the config tells objects
apart (``edge.nginx_conf.MEDIA_PATHS``, the origin's names ``init-<id>.mp4``,
``part-<msn>.<i>.m4s``, ``seg-<msn>.m4s``): :func:`kind_of`, its Lua twin in
:data:`LUA_METRICS_INIT`.
"""

from __future__ import annotations

SHARED_DICT = "livecast_metrics"
SHARED_DICT_MB = 1  # a few hundred keys: kinds × cache statuses × code classes, buckets
METRICS_PATH = "/edge/metrics"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
KINDS = ("playlist", "part", "segment", "init", "session", "other")
# seconds: an edge answers from the cache in a millisecond; a blocking playlist or a preload-hinted
# part is held by the origin up to 3 × target duration (6 s at 2 s segments) — the last bucket
BUCKETS = ("0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10")

REQUESTS = "livecast_edge_requests_total"
SENT_BYTES = "livecast_edge_sent_bytes_total"
REQUEST_DURATION = "livecast_edge_request_duration_seconds"
UPSTREAM_RESPONSE = "livecast_edge_upstream_response_seconds"
METRIC_NAMES = (REQUESTS, SENT_BYTES, REQUEST_DURATION, UPSTREAM_RESPONSE)
LOG_CALL = "livecast_metrics_log()"
NO_LUA_ANSWER = "edge metrics need the nginx Lua modules (docs/metrics.md)"

# init_by_lua: appended inside the tier's own init block (nginx allows one per http block).
# Keys in the dict: "r <kind> <cache> <code>", "b <kind>", "d <kind> <bucket>", "ds <kind>",
# "u <kind> <bucket>", "us <kind>" (bucket: 1-based index into the bounds, n+1 = +Inf).
LUA_METRICS_INIT = """
        local metrics = ngx.shared.@DICT@
        local metrics_tier = "@TIER@"
        local bounds = {@BOUNDS@}
        local nbounds = #bounds
        local limits = {}
        for i = 1, nbounds do limits[i] = tonumber(bounds[i]) end
        local function bucket_of(seconds)
            for i = 1, nbounds do
                if seconds <= limits[i] then return i end
            end
            return nbounds + 1
        end
        local function kind_of(uri)
            if uri:sub(1, 9) == "/session/" then return "session" end
            local name, ext = uri:match("([^/]*)%.(%w+)$")
            if ext == "m3u8" then return "playlist" end
            if ext == "m4s" or ext == "mp4" then
                if name:sub(1, 5) == "part-" then return "part" end
                if name:sub(1, 4) == "init" then return "init" end
                return "segment"
            end
            return "other"
        end
        function livecast_metrics_log()
            local kind = kind_of(ngx.var.uri or "")  -- none: a request nginx could not parse
            local cache = ngx.var.upstream_cache_status
            if cache == nil or cache == "" then cache = "none" end
            local code = math.floor(ngx.status / 100) .. "xx"
            metrics:incr("r " .. kind .. " " .. cache .. " " .. code, 1, 0)
            metrics:incr("b " .. kind, tonumber(ngx.var.body_bytes_sent) or 0, 0)
            local took = tonumber(ngx.var.request_time) or 0
            metrics:incr("d " .. kind .. " " .. bucket_of(took), 1, 0)
            metrics:incr("ds " .. kind, took, 0)
            local upstream = ngx.var.upstream_response_time
            if upstream == nil or upstream == "" then return end
            -- "0.002, 0.010 : 0.004": one time per attempt (failover), summed as the access log
            local total, asked = 0, false
            for value in upstream:gmatch("[%d.]+") do
                total, asked = total + tonumber(value), true
            end
            if not asked then return end
            metrics:incr("u " .. kind .. " " .. bucket_of(total), 1, 0)
            metrics:incr("us " .. kind, total, 0)
        end
        local function number(value)
            if value == math.floor(value) and math.abs(value) < 2^53 then
                return string.format("%d", value)
            end
            return string.format("%.15g", value)
        end
        local function family(out, name, kind, help)
            out[#out + 1] = "# HELP " .. name .. " " .. help
            out[#out + 1] = "# TYPE " .. name .. " " .. kind
        end
        local function histogram(out, name, help, counts, sums)
            family(out, name, "histogram", help)
            local kinds = {}
            for kind in pairs(sums) do kinds[#kinds + 1] = kind end
            table.sort(kinds)
            for _, kind in ipairs(kinds) do
                local labels = 'tier="' .. metrics_tier .. '",kind="' .. kind .. '"'
                local seen = counts[kind] or {}
                local total = 0
                for i = 1, nbounds + 1 do
                    total = total + (seen[i] or 0)
                    local le = bounds[i] or "+Inf"
                    out[#out + 1] = name .. "_bucket{" .. labels .. ',le="' .. le .. '"} '
                        .. number(total)
                end
                out[#out + 1] = name .. "_sum{" .. labels .. "} " .. number(sums[kind])
                out[#out + 1] = name .. "_count{" .. labels .. "} " .. number(total)
            end
        end
        -- the Prometheus text (format 0.0.4) of everything counted so far
        function livecast_metrics_render()
            local keys = metrics:get_keys(0)
            table.sort(keys)
            local requests, sent = {}, {}
            local durations, duration_sums, upstreams, upstream_sums = {}, {}, {}, {}
            for _, key in ipairs(keys) do
                local value = metrics:get(key)
                local what, kind, rest = key:match("^(%a+) (%S+) ?(.*)$")
                if value == nil or what == nil then
                elseif what == "r" then
                    local cache, code = rest:match("^(%S+) (%S+)$")
                    requests[#requests + 1] = '{tier="' .. metrics_tier .. '",kind="' .. kind
                        .. '",cache="' .. cache .. '",code="' .. code .. '"} ' .. number(value)
                elseif what == "b" then
                    sent[#sent + 1] = '{tier="' .. metrics_tier .. '",kind="' .. kind .. '"} '
                        .. number(value)
                elseif what == "d" or what == "u" then
                    local into = what == "d" and durations or upstreams
                    into[kind] = into[kind] or {}
                    into[kind][tonumber(rest)] = value
                elseif what == "ds" then duration_sums[kind] = value
                elseif what == "us" then upstream_sums[kind] = value
                end
            end
            local out = {}
            family(out, "@REQUESTS@", "counter",
                "Requests answered, by object kind, cache status and status class")
            for _, sample in ipairs(requests) do out[#out + 1] = "@REQUESTS@" .. sample end
            family(out, "@SENT_BYTES@", "counter", "Response body bytes sent, by object kind")
            for _, sample in ipairs(sent) do out[#out + 1] = "@SENT_BYTES@" .. sample end
            histogram(out, "@REQUEST_DURATION@",
                "Seconds from the first request byte to the last response byte",
                durations, duration_sums)
            histogram(out, "@UPSTREAM_RESPONSE@",
                "Seconds the upstream took to answer (all attempts), requests that asked it",
                upstreams, upstream_sums)
            out[#out + 1] = ""
            return table.concat(out, "\\n")
        end
"""


def kind_of(path: str) -> str:
    """The ``kind`` label of a request path (the Lua ``kind_of``'s twin): ``session`` under
    ``/session/``; ``playlist`` for ``.m3u8``; for media (``.m4s``, ``.mp4``) ``part`` when the
    file name starts with ``part-``, ``init`` when it starts with ``init``, else ``segment``;
    ``other`` for the rest (``recording.json`` …)."""
    if path.startswith("/session/"):
        return "session"
    name = path.rpartition("/")[2]
    stem, dot, ext = name.rpartition(".")
    if not dot or not ext.isalnum():
        return "other"
    if ext == "m3u8":
        return "playlist"
    if ext in ("m4s", "mp4"):
        if stem.startswith("part-"):
            return "part"
        return "init" if stem.startswith("init") else "segment"
    return "other"


def metrics_init(tier: str) -> str:
    """The Lua code defining ``livecast_metrics_log()`` and ``livecast_metrics_render()`` for a
    tier named ``tier`` (already validated by ``accesslog.log_format``: no quote, no space)."""
    if not tier or any(c in tier for c in '"\\\n\t '):
        raise ValueError(f"unusable tier name {tier!r}")
    bounds = ", ".join(f'"{b}"' for b in BUCKETS)
    code = LUA_METRICS_INIT.replace("@DICT@", SHARED_DICT).replace("@TIER@", tier)
    code = code.replace("@BOUNDS@", bounds).replace("@REQUESTS@", REQUESTS)
    code = code.replace("@SENT_BYTES@", SENT_BYTES).replace("@REQUEST_DURATION@", REQUEST_DURATION)
    return code.replace("@UPSTREAM_RESPONSE@", UPSTREAM_RESPONSE)


def shared_dict_line() -> str:
    """The ``lua_shared_dict`` directive (http level) the counters live in."""
    return f"    lua_shared_dict {SHARED_DICT} {SHARED_DICT_MB}m;"


def log_phase() -> str:
    """The http-level ``log_by_lua_block`` every location inherits (a location with a log
    handler of its own calls :data:`LOG_CALL` itself)."""
    return f"    log_by_lua_block {{ {LOG_CALL} }}"


def metrics_location(lua: bool) -> list[str]:
    """``location = /edge/metrics``: the counters with Lua; without, a plain 404 saying why
    (instead of the request going to the origin). Never cached, never logged, never counted."""
    head = [f"        location = {METRICS_PATH} {{", "            access_log off;"]
    if not lua:
        return [
            *head,
            "            default_type text/plain;",
            f'            return 404 "{NO_LUA_ANSWER}\\n";',
            "        }",
        ]
    return [
        *head,
        "            log_by_lua_block { }",
        "            content_by_lua_block {",
        f'                ngx.header["Content-Type"] = "{CONTENT_TYPE}"',
        '                ngx.header["Cache-Control"] = "no-store"',
        "                ngx.print(livecast_metrics_render())",
        "            }",
        "        }",
    ]

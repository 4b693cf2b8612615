"""``livecast sweep SWEEP.toml --out DIR``: the simulator over many configurations, on Dask.

A sweep file names a scenario and what to vary in it::

    base = "simulate-6.5m.toml"         # the scenario, relative to this file
    [vary]                              # dotted keys into the scenario → values (cartesian)
    "audience.viewers" = [1000000, 6500000, 20000000]
    "simulate.edges.count" = [100, 200]
    retry_jitter = [true, false]

    [[case]]                            # optional: explicit configurations, each crossed
    name = "collapse on"                # with the [vary] grid (its keys change together)
    "simulate.edges.collapse" = true
    "simulate.shield.collapse" = true

Keys are the scenario's, dotted (``simulate.edges.count``; ``downlink[0].kbps`` for an array of
tables); unquoted nested keys (``simulate.edges.count = [...]`` in ``[vary]``) mean the same. A
table given as a value is merged into the scenario's table, anything else replaces the value.
The configurations are every case (or the base alone) × the product of the ``[vary]`` lists, in
file order. Before anything is scheduled the base and every configuration are validated with
the scenario's own parser: a key the scenario does not have is a ConfigError naming
``vary."…"`` (or ``case[i]."…"``), a bad value one naming the configuration and the key; the
command prints them and exits 2 with no cluster started.

Each configuration is one task (``simulate_data``); only a small summary travels back: the
verdict and its summary, the first saturated component and when, the start of the origin
overload cascade, the peak utilisation of each tier, the fatal error rate, the rebuffering
ratio, the startup p95, the peak of viewers and the model's wall seconds. The command prints a
progress line per finished configuration and writes ``sweep.json``, ``sweep.csv`` and
``sweep.html`` (one self-contained table) to ``--out``. Exit 0 when every configuration ran
(whatever their verdicts), 1 when one could not run (its error is in the row), 2 for bad input.

**Why Dask** (``dask.distributed``, the ``sweep`` extra): the configurations are independent,
CPU-bound numpy runs of seconds each with results of a few hundred bytes — a plain task map.
``distributed`` is a pure-Python wheel; the same code runs on a ``LocalCluster`` (worker
processes on this machine, one single-threaded worker per core by default: the model is one
numpy thread) in tests and here, and on a multi-machine cluster with ``--scheduler HOST:PORT``
(``dask scheduler`` on one host, ``dask worker HOST:PORT`` on each of the others — which must
have livecast installed, and any ``simulate.profile`` file at the same path). It retries a task
whose worker died and reports task errors with their traceback. Ray would do too, but it is
heavier — a large binary wheel and its own object store and runtime — for no gain here: there
is nothing to share between tasks and nothing big to move. A home-made process pool would have
to reinvent the remote workers, the retries and the progress.
"""

from __future__ import annotations

import argparse
import copy
import csv
import html
import io
import itertools
import json
import math
import os
import re
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from livecast.config import read_toml
from livecast.errors import ConfigError

if TYPE_CHECKING:
    from distributed import Client

    from livecast.simulate.run import SimulationResult

SWEEP_KEYS = {"base", "vary", "case"}
MAX_CONFIGURATIONS = 10_000
TIERS = ("edge", "edge-uplinks", "shield", "shield-uplink", "origin")  # column order; others after
SHOWN_ERRORS = 5
_SEGMENT = re.compile(r"^([A-Za-z0-9_-]+)((?:\[\d+\])*)$")

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Configuration:
    index: int  # 1-based, in file order
    name: str
    params: dict[str, Any]  # dotted key → value (the case's keys, then the [vary] keys)
    where: dict[str, str]  # dotted key → where the sweep file sets it (vary."k", case[0]."k")
    data: dict[str, Any]  # the whole scenario of this configuration


@dataclass(frozen=True)
class Sweep:
    path: Path
    base: Path
    keys: tuple[str, ...]  # every swept key, in column order
    configurations: tuple[Configuration, ...]
    base_data: dict[str, Any]


# ---------------------------------------------------------------------------- the file


def _message(error: ConfigError) -> str:
    text = str(error)
    prefix = f"config key {error.key!r}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _flatten(table: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in table.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            yield from _flatten(value, dotted)
        else:
            yield dotted, value


def _path(dotted: str, where: str) -> KeyPath:
    path: list[str | int] = []
    for segment in dotted.split("."):
        match = _SEGMENT.match(segment)
        if match is None:
            raise ConfigError(where, "not a dotted key of the scenario (a.b.c, or a[0].b)")
        path.append(match.group(1))
        path.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    return tuple(path)


def _assign(data: dict[str, Any], path: KeyPath, value: Any, where: str) -> None:
    """Set ``value`` at ``path`` in the scenario dict, creating missing tables."""
    node: Any = data
    for depth, step in enumerate(path[:-1]):
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                raise ConfigError(where, f"the scenario has no element {step} there")
            child = node[step]
        else:
            if not isinstance(node, dict):
                raise ConfigError(where, "the scenario has a list there: index it (a[0].b)")
            child = node.setdefault(step, {})
        if not isinstance(child, dict | list):
            shown = ".".join(str(s) for s in path[: depth + 1])
            raise ConfigError(where, f"{shown} is a value in the scenario, not a table")
        node = child
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ConfigError(where, f"the scenario has no element {last} there")
        node[last] = copy.deepcopy(value)
    elif not isinstance(node, dict):
        raise ConfigError(where, "the scenario has a list there: index it (a[0].b)")
    else:
        node[last] = copy.deepcopy(value)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "; ".join(_shown(v) for v in value)
    return str(value)


def _cases(raw: Any) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    """[[case]] → (name, dotted key → value, dotted key → where); one empty case if none."""
    if raw is None:
        return [("", {}, {})]
    if not isinstance(raw, list) or not raw or not all(isinstance(c, Mapping) for c in raw):
        raise ConfigError("case", "expected one or more [[case]] tables")
    cases = []
    for i, table in enumerate(raw):
        name = table.get("name", f"case {i + 1}")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"case[{i}].name", "must be a non-empty string")
        values = dict(_flatten({k: v for k, v in table.items() if k != "name"}))
        if not values:
            raise ConfigError(f"case[{i}]", "sets no key of the scenario")
        where = {key: f'case[{i}]."{key}"' for key in values}
        cases.append((name, values, where))
    return cases


def load_sweep(path: str | Path) -> Sweep:
    """Read and expand a sweep file (structure only; :func:`check_sweep` validates values)."""
    path = Path(path)
    raw = read_toml(path, "sweep")
    extra = sorted(set(raw) - SWEEP_KEYS)
    if extra:
        raise ConfigError(extra[0], f"unknown key (a sweep has {', '.join(sorted(SWEEP_KEYS))})")
    base_name = raw.get("base")
    if not isinstance(base_name, str) or not base_name:
        raise ConfigError("base", "expected the path of a scenario (relative to the sweep file)")
    base = Path(base_name) if Path(base_name).is_absolute() else path.parent / base_name
    base_data = read_toml(base, "base")
    vary_raw = raw.get("vary", {})
    if not isinstance(vary_raw, Mapping):
        raise ConfigError("vary", "expected a table of dotted keys → lists of values")
    vary = dict(_flatten(vary_raw))
    for key, values in vary.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f'vary."{key}"', "expected a non-empty list of values")
    cases = _cases(raw.get("case"))
    if not vary and cases == [("", {}, {})]:
        raise ConfigError("vary", "nothing to sweep: give [vary] keys or [[case]] tables")
    count = len(cases) * math.prod(len(v) for v in vary.values())
    if count > MAX_CONFIGURATIONS:
        raise ConfigError("vary", f"{count:,} configurations, over {MAX_CONFIGURATIONS:,}")
    paths = {key: _path(key, f'vary."{key}"') for key in vary}
    keys: list[str] = []
    for _, values, where in cases:
        for key in values:
            if key in vary:
                raise ConfigError(where[key], "also in [vary]: set it in one place")
            paths.setdefault(key, _path(key, where[key]))
            if key not in keys:
                keys.append(key)
    keys.extend(vary)
    configurations: list[Configuration] = []
    for case_name, case_values, case_where in cases:
        for combo in itertools.product(*vary.values()):
            params = {**case_values, **dict(zip(vary, combo, strict=True))}
            where = {**case_where, **{key: f'vary."{key}"' for key in vary}}
            data = copy.deepcopy(base_data)
            for key, value in params.items():
                _assign(data, paths[key], value, where[key])
            label = [case_name] if case_name else []
            label += [f"{key}={_shown(value)}" for key, value in zip(vary, combo, strict=True)]
            configurations.append(
                Configuration(len(configurations) + 1, ", ".join(label), params, where, data)
            )
    return Sweep(path, base, tuple(keys), tuple(configurations), base_data)


def _configuration_error(config: Configuration, total: int, error: ConfigError) -> ConfigError:
    message = _message(error)
    if message.startswith("unknown key"):
        for key, where in config.where.items():
            if key == error.key or key.startswith((f"{error.key}.", f"{error.key}[")):
                return ConfigError(where, f"the scenario has no key {error.key}")
    return ConfigError(
        f"configuration {config.index}/{total} ({config.name}) → {error.key}", message
    )


def check_sweep(sweep: Sweep) -> list[ConfigError]:
    """Every configuration through the simulator's parser (nothing runs): the errors, each
    naming the configuration and the key (or the swept key the scenario does not have)."""
    from livecast.simulate.run import parse_simulation

    base_dir = sweep.base.parent
    try:
        parse_simulation(sweep.base_data, base_dir)
    except ConfigError as error:
        return [ConfigError(f"base → {error.key}", f"{sweep.base}: {_message(error)}")]
    errors: dict[tuple[str, str], ConfigError] = {}
    total = len(sweep.configurations)
    for config in sweep.configurations:
        try:
            parse_simulation(config.data, base_dir)
        except ConfigError as error:
            found = _configuration_error(config, total, error)
            errors.setdefault((found.key, str(found)), found)
    return list(errors.values())


# ---------------------------------------------------------------------------- one task


def summarise(result: SimulationResult) -> dict[str, Any]:
    """The few figures of one configuration that travel back from its worker."""
    from livecast.results.slo import measure

    simulation = result.meta["simulation"]
    saturation = simulation["saturation"]
    first = saturation[0] if saturation else None
    cascade = simulation["cascade"]

    def figure(metric: str) -> float | None:
        value = measure(result.stats, metric)[0].value
        return None if value is None else round(float(value), 6)

    return {
        "verdict": result.verdict.label,
        "summary": result.verdict.summary(),
        "violations": list(dict.fromkeys(check.slo.name for check in result.verdict.violations)),
        "first_saturated": first["component"] if first else None,
        "first_saturated_at_s": first["first_at_s"] if first else None,
        "cascade_at_s": cascade["starts_at_s"] if cascade else None,
        "peak_utilisation": {
            tier: round(max(series["utilisation"], default=0.0), 4)
            for tier, series in simulation["tiers"].items()
        },
        "fatal_error_rate": figure("viewers.fatal_error_rate"),
        "rebuffering_ratio": figure("viewers.rebuffering_ratio"),
        "startup_p95_s": figure("viewers.startup_s.p95"),
        "viewers_peak": round(simulation["model"]["viewers_peak"]),
        "wall_s": simulation["model"]["wall_s"],
    }


def run_configuration(data: dict[str, Any], base_dir: str) -> dict[str, Any]:
    """The task: one configuration's simulation, summarised (runs on a Dask worker)."""
    from livecast.simulate.run import simulate_data

    return summarise(simulate_data(data, Path(base_dir)))


# ---------------------------------------------------------------------------- the run


def run_sweep(sweep: Sweep, client: Client, stream: TextIO | None = None) -> list[dict[str, Any]]:
    """Every configuration as one task on ``client``'s cluster; the rows in file order."""
    stream = stream or sys.stderr
    from distributed import as_completed

    configs = {c.index: c for c in sweep.configurations}
    token = uuid.uuid4().hex[:8]
    futures = client.map(
        run_configuration,
        [c.data for c in configs.values()],
        [str(sweep.base.parent.resolve())] * len(configs),
        key=[f"livecast-sweep-{token}-{i}" for i in configs],
        pure=False,
    )
    index_of = {future.key: i for future, i in zip(futures, configs, strict=True)}
    rows: dict[int, dict[str, Any]] = {}
    tally = {"GO": 0, "NO-GO": 0, "failed": 0}
    done = as_completed(futures, client.loop, with_results=True, raise_errors=False)  # type: ignore[no-untyped-call]
    for future, result in done:
        config = configs[index_of[future.key]]
        row: dict[str, Any] = {"index": config.index, "name": config.name,
                               "params": config.params}  # fmt: skip
        if future.status == "error" or not isinstance(result, dict):
            failure = future.exception() if future.status == "error" else result
            row["error"] = f"{type(failure).__name__}: {failure}"
            tally["failed"] += 1
            outcome = f"could not run: {row['error']}"
        else:
            row.update(result)
            tally[result["verdict"]] += 1
            outcome = result["verdict"]
            if result["first_saturated"]:
                outcome += (f" ({result['first_saturated']} over capacity from "
                            f"{result['first_saturated_at_s']:g} s)")  # fmt: skip
            outcome += f" in {result['wall_s']:.1f} s"
        rows[config.index] = row
        failed = f", {tally['failed']} failed" if tally["failed"] else ""
        print(f"sweep: {len(rows)}/{len(configs)} done, GO {tally['GO']}, NO-GO "
              f"{tally['NO-GO']}{failed} — [{config.index}] {config.name}: {outcome}",
              file=stream, flush=True)  # fmt: skip
    return [rows[i] for i in sorted(rows)]


# ---------------------------------------------------------------------------- the files

RESULT_COLUMNS = (
    "verdict",
    "violations",
    "first_saturated",
    "first_saturated_at_s",
    "cascade_at_s",
)
QOE_COLUMNS = ("fatal_error_rate", "rebuffering_ratio", "startup_p95_s", "viewers_peak", "wall_s")


def _tiers(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    seen = {tier for row in rows for tier in row.get("peak_utilisation", {})}
    return [t for t in TIERS if t in seen] + sorted(seen - set(TIERS))


def table(sweep: Sweep, rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """The rows flattened: (header, cells) — what the CSV and the HTML table show."""
    tiers = _tiers(rows)
    peaks = [f"peak_utilisation_{t}" for t in tiers]
    header = ["configuration", "name", *sweep.keys, *RESULT_COLUMNS, *peaks, *QOE_COLUMNS,
              "summary", "error"]  # fmt: skip
    cells = []
    for row in rows:
        peaks = row.get("peak_utilisation", {})
        cells.append([
            row["index"], row["name"], *(row["params"].get(k) for k in sweep.keys),
            *(row.get(c) for c in RESULT_COLUMNS), *(peaks.get(t) for t in tiers),
            *(row.get(c) for c in QOE_COLUMNS), row.get("summary"), row.get("error"),
        ])  # fmt: skip
    return header, cells


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return _shown(value)


def render_csv(sweep: Sweep, rows: Sequence[Mapping[str, Any]]) -> str:
    header, cells = table(sweep, rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for line in cells:
        writer.writerow("" if v is None else _shown(v) for v in line)
    return out.getvalue()


STYLE = (
    "body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}"
    "th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right;vertical-align:top}"
    "th{background:#f3f3f3;position:sticky;top:0}td.t{text-align:left;max-width:40em}"
    ".go{background:#d9f2d9}.nogo{background:#f8d4d4}.over{color:#b00;font-weight:600}"
)


def render_html(sweep: Sweep, rows: Sequence[Mapping[str, Any]], info: Mapping[str, Any]) -> str:
    """One table; the name and the summary are left out (the swept keys have their columns;
    the violated SLOs' cell shows the full summary on hover)."""
    header, cells = table(sweep, rows)
    shown = [i for i, name in enumerate(header) if name not in ("name", "summary")]
    body = []
    for line in cells:
        tds = []
        for i in shown:
            name, value = header[i], line[i]
            classes = []
            if name == "verdict":
                classes.append({"GO": "go", "NO-GO": "nogo"}.get(str(value), ""))
            if name.startswith("peak_utilisation_") and isinstance(value, float) and value > 1:
                classes.append("over")
            if name in ("violations", "error"):
                classes.append("t")
            attr = f' class="{" ".join(c for c in classes if c)}"' if any(classes) else ""
            if name == "violations" and value:
                attr += f' title="{html.escape(_cell(line[header.index("summary")]))}"'
            tds.append(f"<td{attr}>{html.escape(_cell(value))}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    head = "".join(
        f"<th>{html.escape(header[i].replace('peak_utilisation_', 'peak '))}</th>" for i in shown
    )
    title = f"livecast sweep: {sweep.path.name}"
    facts = (f"{info['configurations']} configurations of {html.escape(str(sweep.base))}: "
             f"GO {info['go']}, NO-GO {info['no_go']}, failed {info['failed']} — "
             f"{info['wall_s']:.1f} s on {html.escape(str(info['engine']))}")  # fmt: skip
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p>{facts}</p><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}"
            "</tbody></table></body></html>\n")  # fmt: skip


def write_sweep(
    out_dir: Path, sweep: Sweep, rows: Sequence[Mapping[str, Any]], info: Mapping[str, Any]
) -> list[Path]:
    """``sweep.json``, ``sweep.csv`` and ``sweep.html`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {"sweep": str(sweep.path), "base": str(sweep.base), "keys": list(sweep.keys),
                **info, "results": list(rows)}  # fmt: skip
    paths = [out_dir / "sweep.json", out_dir / "sweep.csv", out_dir / "sweep.html"]
    paths[0].write_text(json.dumps(document, indent=1, default=str) + "\n", encoding="utf-8")
    paths[1].write_text(render_csv(sweep, rows), encoding="utf-8")
    paths[2].write_text(render_html(sweep, rows, info), encoding="utf-8")
    return paths


# ---------------------------------------------------------------------------- the command


def add_parser(subparsers: Any) -> None:
    """The ``sweep`` sub-command on the ``livecast`` parser's subparsers."""
    parser = subparsers.add_parser(
        "sweep",
        help="the simulator over many configurations (a parameter sweep) on Dask",
        description="livecast sweep SWEEP.toml --out DIR [--workers N | --scheduler HOST:PORT] "
        "(docs/simulation.md, Sweeps)",
    )
    parser.add_argument("sweep", help="the sweep file: base scenario, [vary], [[case]]")
    parser.add_argument("--out", required=True, help="directory for sweep.json/.csv/.html")
    parser.add_argument(
        "--workers", type=int, default=None, help="local worker processes (default: the cores)"
    )
    parser.add_argument(
        "--scheduler", default=None, help="an existing Dask scheduler (HOST:PORT) instead"
    )


class Unreachable(Exception):
    """``--scheduler`` names no Dask scheduler that answers."""


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def main(args: argparse.Namespace, stream: TextIO | None = None) -> int:
    """0 every configuration ran, 1 one could not run, 2 bad input (nothing scheduled)."""
    stream = stream or sys.stderr
    if args.workers is not None and (args.workers < 1 or args.scheduler):
        why = "is for a local cluster, not with --scheduler" if args.scheduler else "must be ≥ 1"
        print(f"livecast sweep: --workers {why}", file=stream)
        return 2
    try:
        sweep = load_sweep(args.sweep)
        errors = check_sweep(sweep)
    except ConfigError as bad:
        errors = [bad]
    if errors:
        for error in errors[:SHOWN_ERRORS]:
            print(f"livecast sweep: {error}", file=stream)
        if len(errors) > SHOWN_ERRORS:
            print(f"livecast sweep: … and {len(errors) - SHOWN_ERRORS} more", file=stream)
        return 2
    total = len(sweep.configurations)
    started = time.monotonic()
    try:
        rows, engine = _run(sweep, args.workers, args.scheduler, stream)
    except Unreachable as error:
        print(f"livecast sweep: {error}", file=stream)
        return 2
    tally = [sum(row.get("verdict") == label for row in rows) for label in ("GO", "NO-GO")]
    info = {"configurations": total, "go": tally[0], "no_go": tally[1],
            "failed": total - sum(tally), "wall_s": round(time.monotonic() - started, 3),
            "engine": engine}  # fmt: skip
    paths = write_sweep(Path(args.out), sweep, rows, info)
    print(f"sweep: {total} configurations in {info['wall_s']:.1f} s on {engine}: GO {tally[0]}, "
          f"NO-GO {tally[1]}, failed {info['failed']}", file=stream)  # fmt: skip
    print("results: " + ", ".join(str(p) for p in paths), file=stream)
    return 1 if info["failed"] else 0


def _run(
    sweep: Sweep, workers: int | None, scheduler: str | None, stream: TextIO
) -> tuple[list[dict[str, Any]], str]:
    """Start (or join) the cluster, run the sweep, shut down what was started."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="15s", set_as_default=False)  # type: ignore[no-untyped-call]
        except OSError as error:  # refused, timed out, bad address
            raise Unreachable(f"cannot reach the Dask scheduler {scheduler}: {error}") from error
        with client:
            threads: dict[str, int] = client.nthreads()  # type: ignore[no-untyped-call]
            print(f"sweep: {len(sweep.configurations)} configurations on the Dask scheduler "
                  f"{scheduler} ({len(threads)} workers, {sum(threads.values())} threads)",
                  file=stream, flush=True)  # fmt: skip
            return run_sweep(sweep, client, stream), f"Dask scheduler {scheduler}"
    n = min(workers or default_workers(), len(sweep.configurations))
    print(f"sweep: {len(sweep.configurations)} configurations on a Dask LocalCluster of {n} "
          "worker processes", file=stream, flush=True)  # fmt: skip
    cluster = LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,  # no dashboard; its HTTP server (health) on any free port:
        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.WARNING,
    )
    with cluster, Client(cluster, set_as_default=False) as client:  # type: ignore[no-untyped-call]
        return run_sweep(sweep, client, stream), f"a Dask LocalCluster ({n} workers)"

"""``livecast sweep``: a small sweep of a 2-minute scenario on a real 2-worker Dask LocalCluster
(one result per configuration, GO with miss collapsing, NO-GO naming the origin without it, the
three files written, the cluster's processes gone afterwards); a bad sweep exits 2 naming the
key or the configuration before any cluster is started; ``--scheduler`` joins an existing one,
where a configuration that cannot run is a row with its error (exit 1)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import distributed
import pytest

from livecast.errors import ConfigError
from livecast.simulate import sweep as sweep_command
from livecast.simulate.sweep import check_sweep, load_sweep

pytestmark = pytest.mark.integration

SCENARIO = """
name = "sweep-test"
duration = 120.0
seed = 1

[target]
stack = true
edges = 2
shield = true

[audience]
kind = "flash"
viewers = 5000
within = 60.0

[slo]
defaults = true
latency_p95 = 8.0

[simulate.edges]
count = 200
cores = 32
gbps = 400

[simulate.shield]
cores = 16
gbps = 100

[simulate.origin]
count = 2
cores = 16
"""

COLLAPSE_CASES = """
[[case]]
name = "collapse on"
"simulate.edges.collapse" = true
"simulate.shield.collapse" = true

[[case]]
name = "collapse off"
simulate.edges.collapse = false     # unquoted: the same dotted key
simulate.shield.collapse = false
"""


def write_sweep(directory: Path, body: str) -> Path:
    (directory / "scenario.toml").write_text(SCENARIO, encoding="utf-8")
    path = directory / "sweep.toml"
    path.write_text('base = "scenario.toml"\n' + body, encoding="utf-8")
    return path


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="livecast")
    sweep_command.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["sweep", *argv])


def children() -> set[int]:
    return {child.pid or 0 for child in multiprocessing.active_children()}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = sweep_command.main(parse(*argv))
    return code, capsys.readouterr().err


def test_a_sweep_runs_every_configuration_on_a_local_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_sweep(
        tmp_path, '[vary]\n"audience.viewers" = [100000, 1000000]\n' + COLLAPSE_CASES
    )
    out = tmp_path / "out"
    before = children()
    started = time.monotonic()
    code, err = run(capsys, str(path), "--out", str(out), "--workers", "2")
    elapsed = time.monotonic() - started
    assert code == 0, err
    assert "LocalCluster of 2 worker processes" in err
    assert "sweep: 4/4 done" in err and "GO 2, NO-GO 2" in err, err

    document = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert document["configurations"] == 4 and document["failed"] == 0
    assert document["keys"] == [
        "simulate.edges.collapse", "simulate.shield.collapse", "audience.viewers"
    ]  # fmt: skip
    rows = document["results"]
    assert [row["index"] for row in rows] == [1, 2, 3, 4]  # one per configuration, file order
    assert [row["params"]["audience.viewers"] for row in rows] == [100000, 1000000] * 2
    for row in rows:
        collapse = row["params"]["simulate.edges.collapse"]
        assert row["name"].startswith("collapse on" if collapse else "collapse off")
        if collapse:
            assert row["verdict"] == "GO", row
            assert row["first_saturated"] is None and row["cascade_at_s"] is None
            assert row["fatal_error_rate"] == 0.0
        else:
            assert row["verdict"] == "NO-GO", row
            assert row["first_saturated"] == "origin", row
            assert row["cascade_at_s"] is not None
            assert row["peak_utilisation"]["origin"] > 1.0
            assert "origin overload cascade" in row["summary"]
        assert {"edge", "shield", "origin"} <= set(row["peak_utilisation"])
        assert row["startup_p95_s"] is not None and row["wall_s"] > 0
        assert len(json.dumps(row)) < 2_000  # only a small summary travels back

    table = list(csv.DictReader(io.StringIO((out / "sweep.csv").read_text(encoding="utf-8"))))
    assert [line["verdict"] for line in table] == ["GO", "GO", "NO-GO", "NO-GO"]
    assert table[2]["first_saturated"] == "origin"
    assert table[3]["simulate.edges.collapse"] == "false"
    page = (out / "sweep.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and page.count("<tr>") == 5
    assert "<script" not in page and "http" not in page  # self-contained
    assert len(page) < 50_000

    deadline = time.monotonic() + 5  # the cluster is shut down: no worker process is left
    while children() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert children() - before == set()
    assert elapsed < 60, f"{elapsed:.1f} s"


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting a cluster or a client is a test failure: a bad sweep schedules nothing."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cluster was started for a bad sweep")

    monkeypatch.setattr(distributed, "LocalCluster", refuse)
    monkeypatch.setattr(distributed, "Client", refuse)


@pytest.mark.usefixtures("no_cluster")
def test_an_unknown_key_fails_the_sweep_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_sweep(tmp_path, '[vary]\n"audience.viewerz" = [1000, 2000]\n')
    code, err = run(capsys, str(path), "--out", str(tmp_path / "out"))
    assert code == 2
    assert 'vary."audience.viewerz"' in err and "no key audience.viewerz" in err, err
    assert err.count("livecast sweep:") == 1  # one error, not one per configuration
    assert not (tmp_path / "out").exists()

    path = write_sweep(tmp_path, '[vary]\n"simulate.edgez.count" = [1]\n')
    code, err = run(capsys, str(path), "--out", str(tmp_path / "out"))
    assert code == 2 and 'vary."simulate.edgez.count"' in err, err


@pytest.mark.usefixtures("no_cluster")
def test_a_bad_value_names_its_configuration_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_sweep(tmp_path, '[vary]\n"audience.viewers" = [1000, -5]\n' + COLLAPSE_CASES)
    code, err = run(capsys, str(path), "--out", str(tmp_path / "out"))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 2, err  # configurations 2 and 4 (both cases) have the bad value
    assert "configuration 2/4 (collapse on, audience.viewers=-5) → audience.viewers" in lines[0]
    assert "configuration 4/4 (collapse off, audience.viewers=-5)" in lines[1]
    assert not (tmp_path / "out").exists()


def test_the_sweep_file_is_validated(tmp_path: Path) -> None:
    cases = [
        ('[vary]\n"audience.viewers" = []\n', 'vary."audience.viewers"'),
        ('[vary]\n"audience.viewers" = 5\n', 'vary."audience.viewers"'),
        ('[vary]\n"audience.viewers.x" = [1]\n', 'vary."audience.viewers.x"'),
        ('[vary]\n"downlink[7].kbps" = [1]\n', 'vary."downlink[7].kbps"'),
        ("[vary]\n", "vary"),
        ('varry = 1\n[vary]\n"seed" = [1]\n', "varry"),
        ('[vary]\n"seed" = [1]\n[[case]]\nseed = 2\n', 'case[0]."seed"'),
    ]
    for body, key in cases:
        (tmp_path / "scenario.toml").write_text(
            SCENARIO + "[[downlink]]\nkbps = 6000\nweight = 1\n", encoding="utf-8"
        )
        path = tmp_path / "sweep.toml"
        path.write_text('base = "scenario.toml"\n' + body, encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            check_sweep(load_sweep(path))
        assert caught.value.key == key, (body, str(caught.value))


def test_cases_cross_the_grid_and_arrays_of_tables_are_indexed(tmp_path: Path) -> None:
    body = (
        '[vary]\n"downlink[0].kbps" = [3000, 9000]\nretry_jitter = [true, false]\n'
        '[[case]]\nname = "small"\naudience = { viewers = 1000 }\n'  # a table merges
        '[[case]]\nname = "big"\n"audience.viewers" = 2000\n'
    )
    (tmp_path / "scenario.toml").write_text(
        SCENARIO + "[[downlink]]\nkbps = 6000\nweight = 1\n", encoding="utf-8"
    )
    path = tmp_path / "sweep.toml"
    path.write_text('base = "scenario.toml"\n' + body, encoding="utf-8")
    sweep = load_sweep(path)
    assert check_sweep(sweep) == []
    assert len(sweep.configurations) == 2 * 2 * 2
    first, last = sweep.configurations[0], sweep.configurations[-1]
    assert first.name == "small, downlink[0].kbps=3000, retry_jitter=true"
    assert first.data["audience"] == {"kind": "flash", "viewers": 1000, "within": 60.0}
    assert first.data["downlink"] == [{"kbps": 3000, "weight": 1}]
    assert last.data["audience"]["viewers"] == 2000 and last.data["retry_jitter"] is False
    assert sweep.keys == ("audience.viewers", "downlink[0].kbps", "retry_jitter")


def test_scheduler_joins_an_existing_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_sweep(tmp_path, '[vary]\n"audience.viewers" = [2000, 4000]\n')
    out = tmp_path / "out"
    cluster = distributed.LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    )
    with cluster:
        code, err = run(
            capsys, str(path), "--out", str(out), "--scheduler", cluster.scheduler_address
        )
        assert code == 0, err
        assert f"on the Dask scheduler {cluster.scheduler_address} (1 workers, 1 threads)" in err
        rows = json.loads((out / "sweep.json").read_text(encoding="utf-8"))["results"]
        assert [row["verdict"] for row in rows] == ["GO", "GO"]

        real = sweep_command.run_configuration

        def failing(data: dict[str, Any], base_dir: str) -> dict[str, Any]:
            if data["audience"]["viewers"] == 4000:
                raise RuntimeError("the model broke")
            return real(data, base_dir)

        monkeypatch.setattr(sweep_command, "run_configuration", failing)  # in-process workers
        code, err = run(
            capsys, str(path), "--out", str(out), "--scheduler", cluster.scheduler_address
        )
        assert code == 1, err  # one configuration could not run: its row says why
        assert "could not run: RuntimeError: the model broke" in err
        rows = json.loads((out / "sweep.json").read_text(encoding="utf-8"))["results"]
        assert rows[0]["verdict"] == "GO" and rows[1]["error"] == "RuntimeError: the model broke"

    code, err = run(capsys, str(path), "--out", str(out), "--scheduler", "x", "--workers", "2")
    assert code == 2 and "--workers is for a local cluster" in err


def test_the_example_sweep_is_valid() -> None:
    sweep = load_sweep(Path(__file__).parents[2] / "examples" / "sweep-6.5m.toml")
    assert check_sweep(sweep) == []
    assert len(sweep.configurations) == 12  # edges 100/200/400 × collapse on/off × jitter on/off
    assert {c.data["simulate"]["edges"]["count"] for c in sweep.configurations} == {100, 200, 400}

"""QoE statistics, SLO verdict, results.json + report.html and A/B comparison (all pure).

Shared by ``rehearse`` and ``simulate`` so both produce the same report; neither imports the other.

    histogram.py  Histogram (mergeable, log-linear), Reservoir (mergeable sample), percentile()
    stats.py      RunStats: per-request-kind, per-viewer QoE (ViewerOutcome), tiers, timeline
    slo.py        Slo, DEFAULT_SLOS, parse_slos(), verdict() → Verdict (GO / NO-GO, exit code)
    report.py     write_results() → results.json + report.html; read_results(); progress_line()
    report_fidelity.py, html.py   the report's Fidelity section; table/figure/histogram bars
    indicators.py the raw material of the scale-invariant indicators (tiers, client, context)
    fidelity.py   indicator_figures(): named figures for SLOs, report and compare
    projection.py load per viewer and the linear projection to the target audience
    compare_indicators.py   the indicators' A/B tests
    svg.py        line_chart(), bar_chart(): inline SVG
    compare.py    compare() of two results.json documents → Comparison (regression, exit code)
    scrape.py     request_totals() of a tier from its Prometheus text
"""

from livecast.results.compare import Comparison, compare, compare_files, render_table
from livecast.results.histogram import Histogram, Reservoir, percentile
from livecast.results.report import (
    ResultsError,
    progress_line,
    read_results,
    render_html,
    write_results,
)
from livecast.results.slo import (
    DEFAULT_SLOS,
    EXIT_COULD_NOT_RUN,
    EXIT_GO,
    EXIT_NO_GO,
    Slo,
    Verdict,
    parse_slos,
    verdict,
)
from livecast.results.stats import LatencySummary, RunStats, ViewerOutcome

__all__ = [
    "DEFAULT_SLOS",
    "EXIT_COULD_NOT_RUN",
    "EXIT_GO",
    "EXIT_NO_GO",
    "Comparison",
    "Histogram",
    "LatencySummary",
    "Reservoir",
    "ResultsError",
    "RunStats",
    "Slo",
    "Verdict",
    "ViewerOutcome",
    "compare",
    "compare_files",
    "parse_slos",
    "percentile",
    "progress_line",
    "read_results",
    "render_html",
    "render_table",
    "verdict",
    "write_results",
]

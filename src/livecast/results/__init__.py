"""QoE statistics, SLO verdict, results.json + report.html and A/B comparison (all pure).

Shared by ``rehearse`` and ``simulate`` so both produce the same report; neither imports the other.
"""

"""`livecast simulate`: the scenario carried to millions of viewers by a cohort model (numpy)."""

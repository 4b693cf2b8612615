"""Faults on the rehearsal timeline (``livecast.scenario.timeline``): the policy (pure), the fault
proxy and process control (adapters)."""

from livecast.rehearse.faults.policy import Action, FaultCounters, decide
from livecast.rehearse.faults.processes import FaultDriver, ProcessControl, Processes
from livecast.rehearse.faults.proxy import FaultProxy
from livecast.scenario.timeline import Fault, Timeline, Transitions, classify, parse_timeline

__all__ = [
    "Action",
    "Fault",
    "FaultCounters",
    "FaultDriver",
    "FaultProxy",
    "ProcessControl",
    "Processes",
    "Timeline",
    "Transitions",
    "classify",
    "decide",
    "parse_timeline",
]

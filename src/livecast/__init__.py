"""livecast: live streaming to very large audiences, and the rehearsal that proves it.

Data flows one way: source → transcode → packager → store → origin → edge → player.
See docs/architecture.md for which module owns what.
"""

__version__ = "0.1.0"

"""Ending an event from outside the server: ``livecast event stop EVENT``.

The command and the serving process share the recording directory, so the request is a file:
``<record dir>/<event>/END-REQUESTED``, written by :func:`request_end` (temporary file + rename)
and found by the server, which looks every second (:func:`end_requests`), ends the event —
EXT-X-ENDLIST on every media playlist, ``end`` in each rendition's journal — and removes the file.
File-system permissions are the access control: whoever may write the recording may end it; no
port is opened for it. :func:`ended` tells the command when the server has done it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from livecast.errors import StoreError
from livecast.store.journal import END_LINE

END_REQUEST = "END-REQUESTED"
JOURNAL = "journal.log"


def request_end(record_dir: Path, event: str) -> Path:
    """Ask the server recording ``event`` under ``record_dir`` to end it."""
    event_dir = record_dir / event
    if not event_dir.is_dir():
        known = (
            sorted(p.name for p in record_dir.iterdir() if p.is_dir())
            if record_dir.is_dir()
            else []
        )
        recorded = ", ".join(known) or "none"
        raise StoreError(f"no recording of event {event!r} in {record_dir} (recorded: {recorded})")
    marker = event_dir / END_REQUEST
    temporary = marker.with_name(END_REQUEST + ".tmp")
    try:
        temporary.write_text("end\n")
        os.replace(temporary, marker)
    except OSError as exc:
        raise StoreError(f"cannot write {marker}: {exc.strerror or exc}") from exc
    return marker


def end_requests(record_dir: Path) -> list[str]:
    """The events whose end was requested (the server consumes them with :func:`clear`)."""
    try:
        return sorted(p.parent.name for p in record_dir.glob(f"*/{END_REQUEST}"))
    except OSError:
        return []


def clear(record_dir: Path, event: str) -> None:
    (record_dir / event / END_REQUEST).unlink(missing_ok=True)


def ended(record_dir: Path, event: str) -> bool:
    """Every rendition of the event's recording carries the end mark."""
    journals = list((record_dir / event).glob(f"*/{JOURNAL}"))
    if not journals:
        return False
    return all(_ends_with_end(path) for path in journals)


def _ends_with_end(journal: Path) -> bool:
    """The end mark is the journal's last line (nothing is recorded after it)."""
    with open(journal, "rb") as file:
        file.seek(max(0, file.seek(0, os.SEEK_END) - 64))
        return file.read().endswith(END_LINE.encode())


def move_aside_if_ended(record_dir: Path, event: str) -> Path | None:
    """An ended recording of ``event`` renamed to ``<event>-<UTC time of the move>`` (still
    exportable under that name), so that a new show can be recorded as ``event``."""
    if not ended(record_dir, event):
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = record_dir / f"{event}-{stamp}"
    try:
        os.replace(record_dir / event, target)
    except OSError as exc:
        raise StoreError(f"cannot move the ended recording {record_dir / event}: {exc}") from exc
    return target

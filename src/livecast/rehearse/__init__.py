"""Dress rehearsal: virtual viewers, audience shapes, faults on a timeline, GO/NO-GO."""

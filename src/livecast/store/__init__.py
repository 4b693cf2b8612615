"""Where the packager's media bytes live: the :class:`~livecast.store.contract.Store` seam and
its implementations (:class:`~livecast.store.ram.RamRing`, the live window in memory)."""

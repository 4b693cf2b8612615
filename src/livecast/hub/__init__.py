"""The stream hub: the media of each stream, from its publisher (a source) to its readers (the
packager, later the recorder and the rehearsal's monitors), each through a bounded queue."""

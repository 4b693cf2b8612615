"""The boxes of a track fragment — ``tfhd``, ``tfdt``, ``trun`` — read once into typed values.

The stream reader (:mod:`livecast.media.fmp4`, timing of each fragment) and the loop rewriter
(:mod:`livecast.media.rewrite`, new ``tfdt``, moved data offsets, clipped samples) both read the
track fragment through these functions, over a bounds-checked
:class:`~livecast.media.box_reader.BoxReader`: a corrupt count or flag raises MediaError.

A ``trun`` is kept as stored: its per-sample fields are columns (one tuple per field its flags
name, ``None`` for a field left to the defaults), read with one ``struct`` call per run — this
is on the hot path, every part of every rendition. :class:`SampleDefaults` resolves what the
run leaves out: the ``tfhd`` defaults, else the track's (``trex``).

ISO/IEC 14496-12: §8.8.7 TrackFragmentHeaderBox, §8.8.8 TrackRunBox, §8.8.12
TrackFragmentBaseMediaDecodeTimeBox, §8.8.3.1 sample flags.
"""

from __future__ import annotations

from dataclasses import dataclass

from livecast.errors import MediaError
from livecast.media.box_reader import BoxReader, i32_table, u32_table

# tfhd tf_flags, ISO/IEC 14496-12 §8.8.7.1
TFHD_BASE_DATA_OFFSET_PRESENT = 0x000001  # base-data-offset-present
TFHD_SAMPLE_DESCRIPTION_INDEX_PRESENT = 0x000002  # sample-description-index-present
TFHD_DEFAULT_SAMPLE_DURATION_PRESENT = 0x000008  # default-sample-duration-present
TFHD_DEFAULT_SAMPLE_SIZE_PRESENT = 0x000010  # default-sample-size-present
TFHD_DEFAULT_SAMPLE_FLAGS_PRESENT = 0x000020  # default-sample-flags-present
TFHD_DURATION_IS_EMPTY = 0x010000  # duration-is-empty
TFHD_DEFAULT_BASE_IS_MOOF = 0x020000  # default-base-is-moof

# trun tr_flags, ISO/IEC 14496-12 §8.8.8.1
TRUN_DATA_OFFSET_PRESENT = 0x000001  # data-offset-present
TRUN_FIRST_SAMPLE_FLAGS_PRESENT = 0x000004  # first-sample-flags-present
TRUN_SAMPLE_DURATION_PRESENT = 0x000100  # sample-duration-present
TRUN_SAMPLE_SIZE_PRESENT = 0x000200  # sample-size-present
TRUN_SAMPLE_FLAGS_PRESENT = 0x000400  # sample-flags-present
TRUN_SAMPLE_COMPOSITION_TIME_OFFSET_PRESENT = 0x000800  # sample-composition-time-offsets-present
TRUN_SAMPLE_COLUMNS = (
    TRUN_SAMPLE_DURATION_PRESENT
    | TRUN_SAMPLE_SIZE_PRESENT
    | TRUN_SAMPLE_FLAGS_PRESENT
    | TRUN_SAMPLE_COMPOSITION_TIME_OFFSET_PRESENT
)

# sample flags, ISO/IEC 14496-12 §8.8.3.1: sample_is_non_sync_sample is bit 16.
NON_SYNC_SAMPLE = 0x0001_0000

# A corrupt sample_count of a run without per-sample fields is bounded by nothing in the box;
# this is far above any live fragment (2^20 AAC frames are over 6 hours at 48 kHz).
MAX_SAMPLES_PER_RUN = 1 << 20


@dataclass(frozen=True, slots=True)
class SampleDefaults:
    """The values of the per-sample fields a ``trun`` leaves out."""

    duration: int
    size: int
    flags: int


@dataclass(frozen=True, slots=True)
class TrackFragmentHeader:
    """A ``tfhd`` (§8.8.7); each optional field is ``None`` when its flag is clear."""

    flags: int
    track_id: int
    base_data_offset: int | None
    sample_description_index: int | None
    default_sample_duration: int | None
    default_sample_size: int | None
    default_sample_flags: int | None

    def sample_defaults(self, track: SampleDefaults) -> SampleDefaults:
        """This fragment's defaults: the ``tfhd``'s where present, else the track's."""
        duration, size, flags = (
            self.default_sample_duration,
            self.default_sample_size,
            self.default_sample_flags,
        )
        if duration is None and size is None and flags is None:
            return track
        return SampleDefaults(
            track.duration if duration is None else duration,
            track.size if size is None else size,
            track.flags if flags is None else flags,
        )


@dataclass(frozen=True, slots=True)
class TrackRun:
    """A ``trun`` (§8.8.8) as stored: each per-sample column holds ``sample_count`` values, or is
    ``None`` when the flags leave that field to the defaults. Composition offsets are signed in
    version 1 (and later), unsigned in version 0."""

    version: int
    flags: int
    sample_count: int
    data_offset: int | None  # from the base (here: the moof start) to the first sample's bytes
    first_sample_flags: int | None
    durations: tuple[int, ...] | None
    sizes: tuple[int, ...] | None
    sample_flags: tuple[int, ...] | None
    composition_offsets: tuple[int, ...] | None

    def total_duration(self, defaults: SampleDefaults) -> int:
        if self.durations is None:
            return defaults.duration * self.sample_count
        return sum(self.durations)

    def first_flags(self, defaults: SampleDefaults) -> int:
        """The first sample's flags: first_sample_flags, else its own, else the default."""
        if self.first_sample_flags is not None:
            return self.first_sample_flags
        if self.sample_flags:
            return self.sample_flags[0]
        return defaults.flags

    def resolved_durations(self, defaults: SampleDefaults) -> tuple[int, ...]:
        if self.durations is None:
            return (defaults.duration,) * self.sample_count
        return self.durations

    def resolved_sizes(self, defaults: SampleDefaults) -> tuple[int, ...]:
        if self.sizes is None:
            return (defaults.size,) * self.sample_count
        return self.sizes


def read_tfhd(reader: BoxReader) -> TrackFragmentHeader:
    """The ``tfhd`` whose payload ``reader`` is at."""
    _, flags = reader.full_box_header()
    track_id = reader.u32("track_ID")
    return TrackFragmentHeader(
        flags,
        track_id,
        reader.u64("base_data_offset") if flags & TFHD_BASE_DATA_OFFSET_PRESENT else None,
        (
            reader.u32("sample_description_index")
            if flags & TFHD_SAMPLE_DESCRIPTION_INDEX_PRESENT
            else None
        ),
        (
            reader.u32("default_sample_duration")
            if flags & TFHD_DEFAULT_SAMPLE_DURATION_PRESENT
            else None
        ),
        reader.u32("default_sample_size") if flags & TFHD_DEFAULT_SAMPLE_SIZE_PRESENT else None,
        reader.u32("default_sample_flags") if flags & TFHD_DEFAULT_SAMPLE_FLAGS_PRESENT else None,
    )


def read_tfdt(reader: BoxReader) -> int:
    """baseMediaDecodeTime of the ``tfdt`` whose payload ``reader`` is at (64-bit in version 1)."""
    version, _ = reader.full_box_header()
    if version == 1:
        return reader.u64("baseMediaDecodeTime")
    return reader.u32("baseMediaDecodeTime")


def read_trun(reader: BoxReader) -> TrackRun:
    """The ``trun`` whose payload ``reader`` is at; MediaError when its sample table does not
    fit in the box. Bytes after the sample table are ignored."""
    version, flags = reader.full_box_header()
    count = reader.u32("sample_count")
    if count > MAX_SAMPLES_PER_RUN:
        raise MediaError(
            f"trun box (payload at {reader.start}): sample_count {count} is beyond"
            f" {MAX_SAMPLES_PER_RUN}"
        )
    data_offset = reader.i32("data_offset") if flags & TRUN_DATA_OFFSET_PRESENT else None
    first_sample_flags = (
        reader.u32("first_sample_flags") if flags & TRUN_FIRST_SAMPLE_FLAGS_PRESENT else None
    )
    durations = sizes = sample_flags = composition_offsets = None
    width = (flags & TRUN_SAMPLE_COLUMNS).bit_count()  # 32-bit fields per sample
    if width:
        words = count * width
        at = reader.take(4 * words, "sample table")
        table: tuple[int, ...] = u32_table(words).unpack_from(reader.data, at)
        column = 0
        if flags & TRUN_SAMPLE_DURATION_PRESENT:
            durations = table[column::width]
            column += 1
        if flags & TRUN_SAMPLE_SIZE_PRESENT:
            sizes = table[column::width]
            column += 1
        if flags & TRUN_SAMPLE_FLAGS_PRESENT:
            sample_flags = table[column::width]
            column += 1
        if flags & TRUN_SAMPLE_COMPOSITION_TIME_OFFSET_PRESENT:
            if version:
                signed: tuple[int, ...] = i32_table(words).unpack_from(reader.data, at)
                composition_offsets = signed[column::width]
            else:
                composition_offsets = table[column::width]
    return TrackRun(
        version,
        flags,
        count,
        data_offset,
        first_sample_flags,
        durations,
        sizes,
        sample_flags,
        composition_offsets,
    )

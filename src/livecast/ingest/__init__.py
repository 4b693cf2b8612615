"""Contribution ingest: encoders (OBS, FFmpeg) publish to livecast over RTMP and SRT."""

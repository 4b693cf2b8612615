"""The HLS grammar (RFC 8216bis), pure: tags and attributes (one parse/render unit per tag),
media and multivariant playlists, and the LL-HLS delivery directives. The packager renders with
it; the player model, the probe and the rehearsal parse with it."""

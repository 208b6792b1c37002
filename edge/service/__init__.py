"""The device service: `ferlite run` (the systemd unit's frame loop), `ferlite check`, and systemd's protocol."""

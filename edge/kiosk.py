"""The kiosk screen's start-up check: ``python -m ferlite.edge.kiosk [--config PATH] [--write FILE]``.

ferlite-kiosk.service (systemd/) runs it as its ExecCondition: it exits 1 (the unit is skipped, not failed)
unless ``[http] kiosk = true`` in the config, and otherwise prints (or writes to FILE, for the browser) the
address of the kiosk page on this device, with the token when one is set and ``kiosk=1`` (no cursor, the
notice for the people in front of the screen).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlencode

from ferlite.edge.config import Config, ConfigError


def page_url(config: Config) -> str:
    """The kiosk page as this device's own browser reaches it: a wildcard listen address is reached on
    loopback."""
    host, _, port = config.http.listen.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::", "localhost"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    query = {"kiosk": "1"} | ({"token": config.http.token} if config.http.token else {})
    return f"http://{host}:{port}/?{urlencode(query)}"


def main(argv: list[str] | None = None) -> int:
    from ferlite.edge import configfile

    p = argparse.ArgumentParser(prog="python -m ferlite.edge.kiosk", description=__doc__.split("\n\n")[1])
    p.add_argument("--config", type=Path, default=None, help="config file (default: /etc/ferlite/config.toml)")
    p.add_argument("--write", type=Path, default=None, metavar="FILE", help="write the address to FILE")
    args = p.parse_args(argv)
    try:
        config = configfile.load(args.config)
    except ConfigError as e:
        print(f"kiosk: {e}", file=sys.stderr)
        return 2
    if not config.http.kiosk:
        print("kiosk: off ([http] kiosk = false)", file=sys.stderr)
        return 1
    url = page_url(config)
    if args.write is None:
        print(url)
    else:
        args.write.write_text(url + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

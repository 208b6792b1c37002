"""The kiosk screen's start-up check: ``python -m ferlite.edge.kiosk [--config PATH] [--write FILE] [--env FILE]``.

ferlite-kiosk.service (systemd/) runs it as its ExecCondition: it exits 1 (the unit is skipped, not failed)
unless ``[http] kiosk = true`` in the config, and otherwise prints (or writes to FILE, for the browser) the
address of the kiosk page on this device, with the token when one is set and ``kiosk=1`` (no cursor, the
notice for the people in front of the screen). With --env it also writes the compositor's renderer for the
unit's EnvironmentFile: the GPU's where a driver with 3D is bound (the Pi's v3d or vc4), else software.
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


#: DRM drivers whose render node does 3D: the Raspberry Pi's (v3d on the Pi 4 and 5, vc4 before) and the usual
#: PC and SoC GPUs. A virtual GPU without 3D (QEMU's virtio-gpu), or no GPU, gets software rendering.
GPU_3D_DRIVERS = frozenset({"v3d", "vc4", "i915", "xe", "amdgpu", "radeon", "nouveau", "panfrost", "lima",
                            "etnaviv", "msm"})


def renderer(sys_drm: Path = Path("/sys/class/drm")) -> str:
    """wlroots' renderer for cage: ``gles2`` when a render node's driver does 3D, else ``pixman``.

    wlroots 0.15 (Bookworm) does not fall back by itself: on a GPU without 3D, Mesa hands it kms_swrast and
    cage crashes (SIGSEGV). Its pixman renderer draws with the CPU, and the browser then renders with Mesa's
    software rasteriser over shared memory."""
    for node in sorted(sys_drm.glob("renderD*")):
        driver = (node / "device" / "driver").resolve().name
        if driver in GPU_3D_DRIVERS:
            return "gles2"
    return "pixman"


def main(argv: list[str] | None = None) -> int:
    from ferlite.edge import configfile

    p = argparse.ArgumentParser(prog="python -m ferlite.edge.kiosk", description=__doc__.split("\n\n")[1])
    p.add_argument("--config", type=Path, default=None, help="config file (default: /etc/ferlite/config.toml)")
    p.add_argument("--write", type=Path, default=None, metavar="FILE", help="write the address to FILE")
    p.add_argument("--env", type=Path, default=None, metavar="FILE",
                   help="write WLR_RENDERER=gles2 or pixman (a GPU with 3D or not) to FILE")
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
    if args.env is not None:
        args.env.write_text(f"WLR_RENDERER={renderer()}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``promed view``: find the runs, bind the address, print the URL, serve until interrupted.

The socket is bound here, before uvicorn starts, so that a taken port is an input error naming ``--port`` (exit code
2) rather than a server log line, and so that ``--port 0`` can print the port the system chose. The default address
is the loopback interface; any other address is served only when asked for, with a warning, and only then does the
app accept ``Host`` headers other than the loopback names (:func:`promed.view.app.create_app`).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from pathlib import Path
from typing import Callable, Sequence

from promed.errors import InputError
from promed.view.config import ViewConfig
from promed.view.runs import RunDir, discover


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``(host, port)``; ValueError naming the option at fault if it cannot be had."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise InputError(f"--host {host}: not an address of this machine ({err.strerror})") from None
    family, kind, proto, _, addr = infos[0]
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on such sockets; without it every response after
    # the first on a kept-alive connection waits ~40 ms for a delayed ACK
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
        sock.listen(128)
    except OSError as err:
        sock.close()
        what = f"--port {port}" if err.errno == 98 else f"--host {host} --port {port}"
        raise InputError(f"{what}: cannot listen there ({err.strerror}); choose another") from None
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}/"


def announce(runs: list[RunDir], cfg: ViewConfig, url: str, echo: Callable[[str], None],
             warn: Callable[[str], None]) -> None:
    echo(f"promed view: {len(runs)} run(s)" + (": " + ", ".join(r.label for r in runs) if runs else "")
         + (f"; live consultations at /live (doctor {cfg.doctor})" if cfg.live else ""))
    if is_loopback(cfg.host):
        echo(f"serving on {url} (bound to {cfg.host}: only this machine can connect; Ctrl-C to stop)")
    else:
        warn(f"warning: --host {cfg.host} serves the viewer to every machine that can reach this one, with no "
             "authentication: they can read these runs")
        echo(f"serving on {url} (bound to {cfg.host}; Ctrl-C to stop)")


def _live_desk(cfg: ViewConfig):
    from promed.view.live import LiveDesk
    from promed.view.session import Clinic

    return LiveDesk(Clinic(doctor=cfg.doctor))  # a bad --doctor is an input error before anything listens


def serve(paths: Sequence[Path], cfg: ViewConfig, echo: Callable[[str], None] = print,
          warn: Callable[[str], None] = print) -> None:
    """Serve ``paths`` until interrupted. Raises ValueError (before anything listens) for a bad run directory or
    an address that cannot be bound."""
    runs = discover(paths) if paths or not cfg.live else []
    import uvicorn

    from promed.view.app import create_app

    live = _live_desk(cfg) if cfg.live else None
    sock = bind(cfg.host, cfg.port)
    # Host-header check: loopback names only, unless serving other machines (or an IPv6 literal, whose Host header
    # the check cannot parse)
    app = create_app(runs, allowed_hosts=None if is_loopback(cfg.host) and ":" not in cfg.host else ["*"],
                     live=live)
    announce(runs, cfg, url_of(sock, cfg.host), echo, warn)
    if live is not None:
        threading.Thread(target=live.warm_up, name="live-warm-up", daemon=True).start()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[sock])

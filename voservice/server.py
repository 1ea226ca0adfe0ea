"""``skvo serve``: gunicorn in production, Flask's development server on request.

Beside the web workers it runs the async job runner (:mod:`voservice.jobs`),
a separate process that executes UWS jobs; it stops with the server.
"""

from __future__ import annotations

from typing import Any

from voservice.config import Settings


def serve(settings: Settings, dev: bool = False) -> int:
    """Serve the application until interrupted; returns an exit code."""
    from voservice.jobs import start_runner, stop_runner

    runner = start_runner(settings)
    try:
        return _serve_web(settings, dev)
    finally:
        stop_runner(runner)  # a no-op in gunicorn's workers, which unwind through here too


def _serve_web(settings: Settings, dev: bool) -> int:
    from voservice.app import create_app

    host = settings.get("server", "host")
    port = settings.get("server", "port")
    print(f"SKVO serving on {settings.public_url}/ (listening on {host}:{port})", flush=True)
    if dev:
        app = create_app(settings)
        app.run(host=host, port=port, threaded=True)
        return 0
    from gunicorn.app.base import BaseApplication

    class _Gunicorn(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", settings.get("server", "workers"))
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", 16)  # blocking UWS WAITs hold a thread each
            self.cfg.set("timeout", max(120, settings.get("vo", "sync_timeout") + 30))
            # clients (pyvo, TOPCAT) reuse connections: gunicorn's 2 s default
            # closes them under a client that pauses between requests
            self.cfg.set("keepalive", 75)
            self.cfg.set("accesslog", "-")
            self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            return create_app(settings)

    _Gunicorn().run()
    return 0

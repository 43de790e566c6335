"""How every `escape-vo` command stops: SIGTERM (`kill`, `docker stop`, `systemctl stop`) as
Ctrl-C does.

SIGTERM's default action ends the process at once, so a command that started the embedded
PostgreSQL (`ingest`, `embed train`, `serve` ...) would leave it running with a stale lease. As
KeyboardInterrupt, the command unwinds: open transactions roll back, `with database(...)`
releases its lease and stops the server no other process holds. Pool workers go back to the
default action (stopping_worker), so a SIGTERM sent to the whole process group (systemd's
default) ends them rather than failing one task and letting them take the next.
"""

from __future__ import annotations

import signal


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """From now on SIGTERM raises KeyboardInterrupt in the main thread."""
    signal.signal(signal.SIGTERM, _interrupt)


def stopping_worker() -> None:
    """Initializer of a process pool's workers: SIGTERM ends them (the default action)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

"""Run ``screentime`` with its stderr on a pseudo-terminal, as a person at a terminal sees it."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from typing import Callable

#: Told what the terminal has shown so far, and the process; may act on it (e.g. press Ctrl-C).
Watcher = Callable[[bytes, subprocess.Popen], None]


def run_on_terminal(args: list, env: dict | None = None, watch: Watcher | None = None,
                    timeout_s: float = 240) -> tuple[int, str]:
    """Run ``python -m helpers ARGS`` with stderr on a terminal; its exit status and what the terminal showed."""
    master, slave = pty.openpty()
    # A new pseudo-terminal is 0 columns wide, where tqdm draws nothing: give it a terminal's 100x30.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    # Ctrl-C's default action even where the tests run as a background job, which inherits SIGINT ignored.
    proc = subprocess.Popen([sys.executable, "-m", "helpers", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=slave, stdin=subprocess.DEVNULL, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(slave)
    output, deadline = b"", time.time() + timeout_s
    while proc.poll() is None and time.time() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            try:
                output += os.read(master, 65536)
            except OSError:
                break
        if watch is not None:
            watch(output, proc)
    while select.select([master], [], [], 0.5)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    return proc.wait(timeout=60), output.decode(errors="replace")

"""Run child processes the way Kubernetes runs pods: restart them when they die.

Children get their own session, so a Ctrl-C reaches only the supervisor, which
then stops them in order; and they are told to die with it (PR_SET_PDEATHSIG),
so even a supervisor killed with SIGKILL leaves no orphans.
"""

import ctypes
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
RESTART_BACKOFF_SECONDS = (1, 2, 5, 10, 30)


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the supervisor dies, however it dies."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """One supervised process and how to start it again."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)


class Supervisor:
    """Starts children, restarts the ones that die, stops them all in reverse order."""

    def __init__(self, cwd: Path, log_dir: Path) -> None:
        self.cwd = cwd
        self.log_dir = log_dir
        self.children: list[Child] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        """Start `argv` as child `name`, its output appended to `<log_dir>/<name>.log`."""
        child = Child(name, argv, {**os.environ, **env, "PYTHONUNBUFFERED": "1"},
                      self.log_dir / f"{name}.log")
        self.children.append(child)
        self._spawn(child)
        return child

    def _spawn(self, child: Child) -> None:
        with child.log_path.open("ab") as output:
            child.process = subprocess.Popen(
                child.argv, cwd=self.cwd, env=child.env, stdout=output, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
        child.started_at = time.monotonic()

    def restart_dead(self) -> list[str]:
        """Restart children that exited, with a growing delay; returns their names."""
        restarted = []
        now = time.monotonic()
        for child in self.children:
            code = child.process.poll()
            if code is None:
                if now - child.started_at > 60:
                    child.restarts = 0  # it has been healthy for a while
                continue
            if child.next_start == 0.0:
                delay = RESTART_BACKOFF_SECONDS[min(child.restarts, len(RESTART_BACKOFF_SECONDS) - 1)]
                child.next_start = now + delay
                log.warning("%s exited with code %s; restarting in %d s (log: %s)",
                            child.name, code, delay, child.log_path)
            elif now >= child.next_start:
                child.restarts += 1
                child.next_start = 0.0
                self._spawn(child)
                restarted.append(child.name)
        return restarted

    def stop(self, children: list[Child], timeout: float = 30) -> None:
        """SIGTERM `children` together; SIGKILL those still alive after `timeout` seconds."""
        running = [c for c in children if c.process is not None and c.process.poll() is None]
        for child in running:
            child.process.terminate()
        deadline = time.monotonic() + timeout
        for child in running:
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s: killing it", child.name, timeout)
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()

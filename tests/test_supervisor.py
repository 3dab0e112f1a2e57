"""The `make run` supervisor on its own: restart delays, stopping stubborn children, no orphans."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from local_kiosk import supervisor
from local_kiosk.supervisor import Supervisor
from tests.fixtures.servers import process_alive, wait_until

BACKOFF = (0.1, 0.2, 0.4)  # the real schedule's shape (growing, then capped), in tenths of seconds


def _next_delay(sup: Supervisor, child: supervisor.Child) -> float:
    """Wait until the supervisor notices `child` dead; the delay it schedules before restarting it."""
    wait_until(lambda: sup.restart_dead() == [] and child.next_start != 0.0, 10, f"{child.name} noticed dead")
    return child.next_start - time.monotonic()


def _restarted(sup: Supervisor, child: supervisor.Child) -> None:
    wait_until(lambda: sup.restart_dead() == [child.name], 10, f"{child.name} restarted")


def test_the_restart_delay_grows_to_its_cap_and_resets_after_a_healthy_run(tmp_path, monkeypatch):
    monkeypatch.setattr(supervisor, "RESTART_BACKOFF_SECONDS", BACKOFF)
    sup = Supervisor(tmp_path, tmp_path / "logs")
    child = sup.start("flaky", ["sleep", "60"], {})
    try:
        delays = []
        for _ in range(4):
            child.process.kill()
            delays.append(_next_delay(sup, child))
            died = time.monotonic()
            _restarted(sup, child)
            assert time.monotonic() - died >= delays[-1] - 0.01  # it really waited
        assert [round(d, 1) for d in delays] == [0.1, 0.2, 0.4, 0.4], delays
        assert child.restarts == 4
        child.started_at -= 61  # the restarted child has now been healthy for over a minute
        assert sup.restart_dead() == [] and child.restarts == 0
        child.process.kill()
        assert round(_next_delay(sup, child), 1) == 0.1
    finally:
        sup.stop(sup.children, timeout=5)


def test_a_child_that_ignores_sigterm_is_killed_with_its_process_group(tmp_path):
    sup = Supervisor(tmp_path, tmp_path / "logs")
    ready = tmp_path / "grandchild.pid"
    child = sup.start("stubborn", ["sh", "-c", f"trap '' TERM; sleep 60 & echo $! > {ready}; wait"], {})
    wait_until(lambda: ready.exists() and ready.read_text().strip(), 10, "the stubborn child")
    grandchild = int(ready.read_text())
    started = time.monotonic()
    try:
        sup.stop([child], timeout=0.5)
        assert child.process.returncode == -signal.SIGKILL
        assert time.monotonic() - started >= 0.5  # it was given its chance to stop
        wait_until(lambda: not process_alive(grandchild), 10, "the stubborn child's own child")
    finally:
        if process_alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


SUPERVISE = """
import sys, time
from pathlib import Path
from local_kiosk.supervisor import Supervisor
sup = Supervisor(Path.cwd(), Path(sys.argv[1]))
child = sup.start("sleeper", ["sleep", "60"], {})
print(child.process.pid, flush=True)
time.sleep(60)
"""


def test_no_orphans_when_the_supervisor_is_sigkilled(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", SUPERVISE, str(tmp_path / "logs")],
                              cwd=Path(__file__).parents[1], stdout=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())
    try:
        assert process_alive(pid)
        parent.kill()
        parent.wait(10)
        wait_until(lambda: not process_alive(pid), 10, "the child of a SIGKILLed supervisor")
    finally:
        if process_alive(pid):
            os.kill(pid, signal.SIGKILL)
        parent.stdout.close()

"""`make run`: the supervisor brings the kiosk up, restarts the dead, stops cleanly."""

import os
import signal

import pytest

from tests.fixtures.kiosk import LocalKiosk, descendants
from tests.fixtures.model_server import PROJECT_ROOT, served_models
from tests.fixtures.servers import process_alive, wait_until

pytestmark = pytest.mark.skipif("NuclearSegmentation" not in served_models(PROJECT_ROOT / "models"),
                                reason="no NuclearSegmentation model in models/ yet")


def test_first_run_segments_a_sample_restarts_the_dead_and_stops_cleanly(tmp_path):
    kiosk = LocalKiosk(tmp_path / "home", consumers=2, sample=True).start()
    try:
        wait_until(lambda: f"portal ready: {kiosk.url}" in kiosk.log(), 60, "the portal's URL")
        wait_until(lambda: "sample done" in kiosk.log(), 300, "the sample job")
        line = next(line for line in kiosk.log().splitlines() if "sample done" in line)
        result = line.split("result ")[1].split(",")[0]
        assert os.path.exists(result) and result.startswith(str(tmp_path / "home" / "bucket" / "output"))
        assert sorted(p.name for p in (tmp_path / "home" / "samples").iterdir())[0] == "nuclei-1.tif"

        children = descendants(kiosk.process.pid)
        consumer = next(pid for pid in children if _cmdline(pid).endswith("-m consumers"))
        os.kill(consumer, signal.SIGKILL)
        wait_until(lambda: "restarting" in kiosk.log(), 30, "the supervisor noticing")
        wait_until(lambda: kiosk.log("consumer-1").count("serving queue") +
                   kiosk.log("consumer-2").count("serving queue") == 3, 120, "the restarted consumer")
    finally:
        everything = descendants(kiosk.process.pid)
        assert kiosk.stop() == 0
    wait_until(lambda: not [pid for pid in everything if process_alive(pid)], 30, "no orphans")


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


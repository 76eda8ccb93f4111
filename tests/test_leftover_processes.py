"""The check CI runs after each suite (tests/leftover_processes.py) finds a process left in the
checkout's folders, and stops finding it once it is gone."""
import subprocess

from tests.leftover_processes import leftovers, main


def test_a_process_left_in_the_folder_is_found(tmp_path):
    (tmp_path / "data").mkdir()
    proc = subprocess.Popen(["sleep", "60"], cwd=tmp_path / "data")
    try:
        found = leftovers(tmp_path)
        assert any(line.startswith(f"{proc.pid} ") for line in found), found
        assert main(["x", str(tmp_path)], grace=0) == 1
    finally:
        proc.kill()
        proc.wait()
    assert leftovers(tmp_path) == []
    assert main(["x", str(tmp_path)], grace=0) == 0

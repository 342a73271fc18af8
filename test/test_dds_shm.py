"""The shared-memory cleaner on a directory of our own: what counts as stale and what is kept."""
import mmap
import os
import time

from neural_ae_ros.ros.dds import clean_stale_shm, stale_shm_groups


def _touch(path, age_s=60.0, size=4096):
    path.write_bytes(b"\0" * size)
    t = time.time() - age_s
    os.utime(path, (t, t))


def test_a_port_without_lock_files_is_stale_unless_a_live_process_maps_it_or_it_is_new(tmp_path):
    # a sender re-created this port after its listener died, then exited: no lock file, no mapper
    _touch(tmp_path / "fastdds_port7001")
    _touch(tmp_path / "sem.fastdds_port7001_mutex", size=32)
    # a port a live sender (this process) still maps
    _touch(tmp_path / "fastdds_port7002")
    _touch(tmp_path / "sem.fastdds_port7002_mutex", size=32)
    # a port being created right now
    _touch(tmp_path / "fastdds_port7003", age_s=0.0)
    with open(tmp_path / "fastdds_port7002", "r+b") as f, mmap.mmap(f.fileno(), 0):
        stale = stale_shm_groups(tmp_path, min_age_s=3.0)
        assert stale == {"fastdds_port7001": ["fastdds_port7001", "sem.fastdds_port7001_mutex"]}
        assert sorted(clean_stale_shm(tmp_path, min_age_s=3.0)) == ["fastdds_port7001", "sem.fastdds_port7001_mutex"]
    assert sorted(os.listdir(tmp_path)) == ["fastdds_port7002", "fastdds_port7003", "sem.fastdds_port7002_mutex"]


def test_a_segment_whose_lock_file_nobody_holds_is_stale_with_all_its_files(tmp_path):
    for name in ("fastdds_abc123", "fastdds_abc123_el", "fastdds_port7010", "fastdds_port7010_el",
                 "fastdds_port7010_sl", "sem.fastdds_port7010_mutex"):
        _touch(tmp_path / name)
    _touch(tmp_path / "unrelated_file")
    stale = stale_shm_groups(tmp_path, min_age_s=3.0)
    assert stale == {"fastdds_abc123": ["fastdds_abc123", "fastdds_abc123_el"],
                     "fastdds_port7010": ["fastdds_port7010", "fastdds_port7010_el", "fastdds_port7010_sl",
                                          "sem.fastdds_port7010_mutex"]}
    clean_stale_shm(tmp_path, min_age_s=3.0)
    assert os.listdir(tmp_path) == ["unrelated_file"]

"""A lake on a small tmpfs: a disk that fills up mid-write, then goes read-only.

Each time the command ends in one line naming the cause, the published tables stay as they were, and
the run after the space comes back ingests what was refused. Mounting needs root with CAP_SYS_ADMIN;
elsewhere the module is skipped, saying why.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from contextlib import redirect_stderr
from io import StringIO
from pathlib import Path

import pytest
from conftest import flow_env, write_config
from ingest_runs import links, rows

from cli.main import main

pytestmark = [pytest.mark.flow, pytest.mark.spark, pytest.mark.slow]

SIZE_MB = 32


def _mount(where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(where)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {done.stderr.strip()}")


def _lines(n: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(
        json.dumps({"ts": f"2026-11-0{1 + i % 3}T10:00:00Z", "client_ip": "198.51.100.7", "path": "/api/v1/x",
                    "status": 200, "user_agent": rng.randbytes(48).hex()}) + "\n"  # incompressible
        for i in range(n)
    )  # fmt: skip


def _fill(disk: Path, leave: int) -> Path:
    """A file that takes all free space on `disk` but `leave` bytes."""
    stat = os.statvfs(disk)
    filler = disk / "filler"
    with filler.open("wb") as fh:
        fh.truncate(0)
        os.posix_fallocate(fh.fileno(), 0, stat.f_bavail * stat.f_frsize - leave)
    return filler


def _cli(config: Path, source: Path) -> tuple[int, list[str]]:
    err = StringIO()
    with flow_env(), redirect_stderr(err):
        code = main(["--config", str(config), "ingest", "--source", str(source), "--format", "jsonl"])
    return code, [line for line in err.getvalue().splitlines() if line.startswith("enumwatch:")]


@pytest.fixture(scope="module")
def small_disk(prefect_harness, tmp_path_factory):
    """A published lake on a 32 MB tmpfs, then: a refused ingest on a full disk, its retry, a read-only disk."""
    root = tmp_path_factory.mktemp("disk")
    disk = root / "disk"
    _mount(disk)
    try:
        lake = disk / "lake"
        config = write_config(root / "cfg", lake)
        for name, n in (("first", 200), ("second", 5_000), ("third", 10)):
            (root / name).mkdir()
            (root / name / f"{name}.jsonl").write_text(_lines(n, len(name)))
        seen = {"first": _cli(config, root / "first")}
        before = {"links": links(lake), "requests": rows(lake, "requests")}
        filler = _fill(disk, 256 * 1024)
        seen["full"] = _cli(config, root / "second")
        seen["after full"] = {"links": links(lake), "requests": rows(lake, "requests"),
                              "staging": (lake / "_staging").exists()}  # fmt: skip
        filler.unlink()
        seen["space back"] = _cli(config, root / "second")
        seen["after space back"] = rows(lake, "requests")
        seen["links space back"] = links(lake)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        seen["read-only"] = _cli(config, root / "third")
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        seen["after read-only"] = links(lake)
        yield before, seen
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_mid_write_ends_in_one_line_and_leaves_the_published_tables_as_they_were(small_disk):
    before, seen = small_disk
    assert seen["first"][0] == 0
    code, lines = seen["full"]
    assert code == 1 and len(lines) == 1
    assert "no space left on device while this run was writing; the published tables are as they were" in lines[0]
    assert seen["after full"]["links"] == before["links"]
    assert seen["after full"]["requests"] == before["requests"]
    assert not seen["after full"]["staging"]  # given back at once


def test_the_run_after_space_comes_back_ingests_what_the_full_disk_refused(small_disk):
    before, seen = small_disk
    assert seen["space back"][0] == 0
    assert len(seen["after space back"]) == len(before["requests"]) + 5_000
    keys = [(r["source_file"], r["line_no"]) for r in seen["after space back"]]
    assert len(set(keys)) == len(keys)


def test_a_read_only_lake_ends_in_one_line_and_changes_nothing(small_disk):
    _, seen = small_disk
    code, lines = seen["read-only"]
    assert code == 1 and len(lines) == 1 and "read-only file system" in lines[0]
    assert seen["after read-only"] == seen["links space back"]  # still the links of the last good run

"""The lake: one key per lake, one writer at a time, versions swapped all or nothing, old versions collected."""

from __future__ import annotations

import json
import os

import pytest

from core.lake import Lake, LakeError, storage_failure
from core.versions import walk_files
from schemas import REQUESTS


def _stage(lake: Lake, run_id: str, table: str, files: dict[str, bytes]):
    """Write files under the run's staging dir for `table`, as Spark would, and return that dir."""
    root = lake.staging(run_id) / table
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "_SUCCESS").write_bytes(b"")
    (root / ".part-0.parquet.crc").write_bytes(b"crc")
    return root


def _publish(lake: Lake, run_id: str, table: str, files: dict[str, bytes], **build) -> None:
    staged = _stage(lake, run_id, table, files)
    lake.publish(run_id, {table: lake.build_version(table, run_id, add=[staged], **build)})


def _files(path) -> dict[str, bytes]:
    """Every file a reader of `path` sees, partition links followed."""
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(walk_files(path))}


def test_open_records_the_key_fingerprint_and_accepts_the_same_key_again(tmp_path):
    lake = Lake(tmp_path / "lake")
    lake.open("aaaa")
    lake.open("aaaa")
    assert json.loads((tmp_path / "lake" / "_lake.json").read_text())["key_fingerprint"] == "aaaa"


def test_open_refuses_a_lake_written_with_another_key(tmp_path):
    Lake(tmp_path / "lake").open("aaaa")
    with pytest.raises(LakeError, match="another pseudonym key") as info:
        Lake(tmp_path / "lake").open("bbbb")
    assert "aaaa" in str(info.value) and "bbbb" in str(info.value)


def test_lock_refuses_a_second_holder_and_frees_on_exit(tmp_path):
    first, second = Lake(tmp_path / "lake"), Lake(tmp_path / "lake")
    with first.lock():
        with pytest.raises(LakeError, match="holds the lake lock"):
            with second.lock():
                pass
    with second.lock():  # released: the next writer gets it
        pass


def test_publish_points_the_table_name_at_a_version_holding_the_staged_files(tmp_path):
    lake = Lake(tmp_path / "lake")
    _publish(lake, "run-1", "requests", {"event_date=2026-11-01/part-0.parquet": b"p1"})
    link = lake.path("requests")
    assert link.is_symlink() and not os.path.isabs(os.readlink(link))  # relative: the lake can move
    assert lake.current("requests").parent == lake.versions / "requests"
    # Spark's markers and checksum files are not published.
    assert _files(link) == {"event_date=2026-11-01/part-0.parquet": b"p1"}
    assert not lake.journal.exists()


def test_build_version_keeps_current_files_as_hard_links_and_drops_named_partitions(tmp_path):
    lake = Lake(tmp_path / "lake")
    _publish(
        lake, "run-1", "requests", {"event_date=2026-11-01/a.parquet": b"a", "event_date=2026-11-02/b.parquet": b"b"}
    )
    before = lake.current("requests")
    _publish(
        lake,
        "run-2",
        "requests",
        {"event_date=2026-11-02/c.parquet": b"c"},
        drop_partitions={"event_date=2026-11-01"},
    )
    after = lake.current("requests")
    assert _files(after) == {"event_date=2026-11-02/b.parquet": b"b", "event_date=2026-11-02/c.parquet": b"c"}
    assert not (after / "event_date=2026-11-01").exists()  # gone, not left as an empty partition
    assert (after / "event_date=2026-11-02/b.parquet").stat().st_ino == (
        before / "event_date=2026-11-02/b.parquet"
    ).stat().st_ino


def test_build_version_without_keep_current_replaces_the_whole_table(tmp_path):
    lake = Lake(tmp_path / "lake")
    _publish(lake, "run-1", "ingest_manifest", {"old.parquet": b"old"})
    _publish(lake, "run-2", "ingest_manifest", {"new.parquet": b"new"}, keep_current=False)
    assert _files(lake.path("ingest_manifest")) == {"new.parquet": b"new"}


def test_build_version_refuses_a_staged_file_that_collides_with_a_published_one(tmp_path):
    lake = Lake(tmp_path / "lake")
    _publish(lake, "run-1", "requests", {"part-0.parquet": b"one"})
    staged = _stage(lake, "run-2", "requests", {"part-0.parquet": b"two"})
    with pytest.raises(LakeError, match="collides"):
        lake.build_version("requests", "run-2", add=[staged])
    assert _files(lake.path("requests")) == {"part-0.parquet": b"one"}


@pytest.mark.parametrize("keep", [0, 1, 2], ids=["keep-only-current", "keep-one-old", "keep-two-old"])
def test_publish_garbage_collects_all_but_current_and_keep_versions(tmp_path, keep):
    lake = Lake(tmp_path / "lake", keep_versions=keep)
    for i in range(5):
        _publish(lake, f"run-{i}", "dq_results", {f"part-{i}.parquet": b"x"})
    versions = sorted(p.name for p in (lake.versions / "dq_results").iterdir())
    assert len(versions) == keep + 1
    assert lake.current("dq_results").name == versions[-1]  # the newest is current
    assert versions[-1].endswith("run-4")


def test_a_crash_in_the_swap_leaves_every_table_as_before_and_recover_rolls_forward(tmp_path, monkeypatch):
    lake = Lake(tmp_path / "lake")
    _publish(lake, "run-1", "requests", {"r1.parquet": b"r1"})
    _publish(lake, "run-1b", "quarantine", {"q1.parquet": b"q1"})
    before = {t: lake.current(t) for t in ("requests", "quarantine")}
    versions = {
        "requests": lake.build_version(
            "requests", "run-2", add=[_stage(lake, "run-2", "requests", {"r2.parquet": b"r2"})]
        ),
        "quarantine": lake.build_version(
            "quarantine", "run-2", add=[_stage(lake, "run-2", "quarantine", {"q2.parquet": b"q2"})]
        ),
    }

    def crash(self, links):
        raise OSError("power cut")

    monkeypatch.setattr(Lake, "_swap", crash)
    with pytest.raises(OSError, match="power cut"):
        lake.publish("run-2", versions)
    assert {t: lake.current(t) for t in before} == before
    assert lake.journal.exists()

    monkeypatch.undo()
    assert Lake(tmp_path / "lake").recover() is True
    assert {t: lake.current(t) for t in before} == versions
    assert _files(lake.path("requests")) == {"r1.parquet": b"r1", "r2.parquet": b"r2"}
    assert not lake.journal.exists()
    assert not lake.staging_root.exists()


def test_recover_rolls_forward_a_journal_written_by_hand(tmp_path):
    lake = Lake(tmp_path / "lake")
    _publish(lake, "run-1", "requests", {"r1.parquet": b"r1"})
    target = lake.versions / "requests" / "v99999999999999999999-run-2"
    target.mkdir(parents=True)
    (target / "r2.parquet").write_bytes(b"r2")
    lake.journal.write_text(json.dumps({"run_id": "run-2", "links": {"requests": os.path.relpath(target, lake.root)}}))
    lake.staging("run-2")
    assert lake.recover() is True
    assert lake.current("requests") == target
    assert not lake.journal.exists() and not lake.staging_root.exists()


def test_recover_without_a_journal_only_drops_stale_staging(tmp_path):
    lake = Lake(tmp_path / "lake")
    _publish(lake, "run-1", "requests", {"r1.parquet": b"r1"})
    before = lake.current("requests")
    lake.staging("run-crashed")
    assert lake.recover() is False
    assert lake.current("requests") == before
    assert not lake.staging_root.exists()


def test_swap_refuses_to_replace_a_plain_directory_where_a_table_link_belongs(tmp_path):
    lake = Lake(tmp_path / "lake")
    (lake.root / "requests").mkdir(parents=True)
    staged = _stage(lake, "run-1", "requests", {"r.parquet": b"r"})
    with pytest.raises(LakeError, match="plain directory"):
        lake.publish("run-1", {"requests": lake.build_version("requests", "run-1", add=[staged])})


@pytest.mark.spark
def test_read_before_the_first_publish_is_an_empty_table_with_its_schema(spark, tmp_path):
    df = Lake(tmp_path / "lake").read(spark, "requests")
    assert df.schema == REQUESTS.spark_schema()
    assert df.count() == 0


# --- shared partitions: a publish costs what it changes -----------------------------------------
def test_build_version_links_unchanged_partitions_to_the_same_part_and_copies_only_changed_ones(tmp_path):
    lake = Lake(tmp_path / "lake")
    days = {f"event_date=2026-11-0{d}/part-{d}.parquet": b"x" for d in range(1, 6)}
    _publish(lake, "run-1", "requests", days)
    before = lake.current("requests")
    _publish(lake, "run-2", "requests", {"event_date=2026-11-05/part-new.parquet": b"new"})
    after = lake.current("requests")
    for d in range(1, 5):  # untouched days: the very same part directory, no file touched
        assert os.readlink(after / f"event_date=2026-11-0{d}") == os.readlink(before / f"event_date=2026-11-0{d}")
    assert os.readlink(after / "event_date=2026-11-05") != os.readlink(before / "event_date=2026-11-05")
    assert _files(before) == days  # the old version is unchanged for a reader still on it
    assert _files(after) == {**days, "event_date=2026-11-05/part-new.parquet": b"new"}


def test_build_version_shares_partitions_two_levels_deep_for_entity_windows(tmp_path):
    lake = Lake(tmp_path / "lake")
    _publish(lake, "run-1", "entity_windows", {"window=day/window_date=2026-11-01/a.parquet": b"a",
                                               "window=hour/window_date=2026-11-01/b.parquet": b"b"})  # fmt: skip
    _publish(
        lake,
        "run-2",
        "entity_windows",
        {"window=day/window_date=2026-11-01/c.parquet": b"c"},
        drop_partitions={"window=day/window_date=2026-11-01"},
    )
    current = lake.current("entity_windows")
    assert (current / "window=hour/window_date=2026-11-01").is_symlink()
    assert _files(current) == {"window=day/window_date=2026-11-01/c.parquet": b"c",
                               "window=hour/window_date=2026-11-01/b.parquet": b"b"}  # fmt: skip


def test_build_version_takes_over_a_version_in_the_older_layout_with_copied_partitions(tmp_path):
    lake = Lake(tmp_path / "lake")
    old = lake.versions / "requests" / "v00000000000000000001-run-0"
    (old / "event_date=2026-11-01").mkdir(parents=True)
    (old / "event_date=2026-11-01/a.parquet").write_bytes(b"a")
    lake.root.joinpath("requests").symlink_to(os.path.relpath(old, lake.root))
    _publish(lake, "run-1", "requests", {"event_date=2026-11-02/b.parquet": b"b"})
    assert (lake.current("requests") / "event_date=2026-11-01").is_symlink()
    assert _files(lake.path("requests")) == {"event_date=2026-11-01/a.parquet": b"a",
                                             "event_date=2026-11-02/b.parquet": b"b"}  # fmt: skip


def test_garbage_collection_removes_parts_no_kept_version_links_to(tmp_path):
    lake = Lake(tmp_path / "lake", keep_versions=1)
    for i in range(4):
        _publish(lake, f"run-{i}", "requests", {f"event_date=2026-11-01/p{i}.parquet": b"x"})
    parts = sorted((lake.parts / "requests" / "event_date=2026-11-01").iterdir())
    assert len(parts) == 2  # the current version's part and the one kept older version's
    assert _files(lake.path("requests")) == {f"event_date=2026-11-01/p{i}.parquet": b"x" for i in range(4)}


def test_recover_removes_the_versions_parts_and_staging_of_a_run_killed_before_its_journal(tmp_path):
    lake = Lake(tmp_path / "lake")
    _publish(lake, "run-1", "requests", {"event_date=2026-11-01/a.parquet": b"a"})
    lake.recover()  # run-1 ends as a run does: its staging dropped
    before = set(lake.root.rglob("*"))
    staged = _stage(lake, "run-2", "requests", {"event_date=2026-11-01/b.parquet": b"b"})
    lake.build_version("requests", "run-2", add=[staged])  # then killed: no journal, nothing published
    assert lake.recover() is False
    assert set(lake.root.rglob("*")) == before
    assert _files(lake.path("requests")) == {"event_date=2026-11-01/a.parquet": b"a"}


def test_publish_makes_a_new_part_only_for_the_partition_it_changes(tmp_path):
    """1 file a run into today's partition: after 20 days of 100 files, a publish copies one day's links."""
    lake = Lake(tmp_path / "lake")
    history = {f"event_date=2026-10-{d:02d}/part-{i}.parquet": b"" for d in range(1, 21) for i in range(100)}
    _publish(lake, "run-0", "requests", history)
    _publish(lake, "run-1", "requests", {"event_date=2026-10-20/part-new.parquet": b""})
    new_parts = [p for p in lake.parts.joinpath("requests").glob("*/*") if p.name.endswith("-run-1")]
    assert [p.parent.name for p in new_parts] == ["event_date=2026-10-20"]  # one part made: the day it changed


# --- the writer lock ------------------------------------------------------------------------------
def test_lock_records_its_holder_and_a_waiter_names_it_then_gets_the_lock_when_freed(tmp_path):
    import threading
    import time

    first, second = Lake(tmp_path / "lake"), Lake(tmp_path / "lake")
    told: list[str] = []
    got = threading.Event()

    def wait_for_it():
        with second.lock(wait_s=30, run_id="detect-2", on_wait=told.append):
            got.set()

    with first.lock(run_id="ingest-1"):
        holder = first.lock_holder()
        assert holder["run_id"] == "ingest-1" and holder["pid"] == os.getpid() and holder["since"]
        waiter = threading.Thread(target=wait_for_it)
        waiter.start()
        time.sleep(1.5)
        assert not got.is_set()  # still waiting, not failed
        assert told and "ingest-1" in told[0] and "waiting up to 30 s" in told[0]
    waiter.join(timeout=10)
    assert got.is_set()
    assert first.lock_holder() is None  # free again


def test_lock_wait_ends_in_one_line_naming_the_holder_and_the_setting(tmp_path):
    first, second = Lake(tmp_path / "lake"), Lake(tmp_path / "lake")
    with first.lock(run_id="ingest-1"):
        with pytest.raises(
            LakeError, match=r"holds the lake lock \(run ingest-1.*waited 0.2 s \(lake.lock_wait_seconds\)"
        ):
            with second.lock(wait_s=0.2):
                pass


# --- storage failures -------------------------------------------------------------------------------
def test_storage_failure_recognises_a_full_disk_in_python_and_in_spark_text():
    import errno

    assert storage_failure(OSError(errno.ENOSPC, "No space left on device")) == "no space left on device"
    wrapped = RuntimeError("Job aborted: java.io.IOException: No space left on device\n\tat ...")
    assert storage_failure(ValueError("outer")) is None
    try:
        try:
            raise wrapped
        except RuntimeError as inner:
            raise ValueError("task failed") from inner
    except ValueError as outer:
        assert storage_failure(outer) == "no space left on device"
    assert storage_failure(OSError(errno.EROFS, "Read-only file system")) == "read-only file system"


# --- readers ------------------------------------------------------------------------------------
@pytest.mark.spark
def test_spark_duckdb_and_pyarrow_read_shared_partitions_with_their_partition_columns(spark, tmp_path):
    import duckdb
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    lake = Lake(tmp_path / "lake")
    for run, day, values in (("r1", "2026-11-01", [1, 2]), ("r2", "2026-11-02", [3]), ("r3", "2026-11-01", [4])):
        staged = lake.staging(run) / "entity_windows" / f"window=day/window_date={day}"
        staged.mkdir(parents=True)
        pq.write_table(pa.table({"x": values}), staged / f"part-{run}.parquet")
        lake.publish(run, {"entity_windows": lake.build_version("entity_windows", run, add=[staged.parents[1]])})
    path = str(lake.path("entity_windows"))
    expected = [(1, "day", "2026-11-01"), (2, "day", "2026-11-01"), (3, "day", "2026-11-02"), (4, "day", "2026-11-01")]
    by_spark = sorted((r.x, r.window, str(r.window_date)) for r in spark.read.parquet(path).collect())
    by_arrow = sorted(tuple(r.values()) for r in ds.dataset(path, partitioning="hive").to_table().to_pylist())
    by_duck = duckdb.sql(  # one '*' per partition column: DuckDB's '**' does not follow directory links
        f"SELECT x, \"window\", CAST(window_date AS VARCHAR) FROM read_parquet('{path}/*/*/*.parquet', "
        "hive_partitioning=true) ORDER BY ALL"
    ).fetchall()
    assert by_spark == by_arrow == by_duck == expected


def test_a_reader_during_publishes_sees_one_whole_version_never_a_mix(tmp_path):
    """Every publish rewrites all three partitions; each read finds the rows of exactly one version."""
    import contextlib
    import threading

    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    lake = Lake(tmp_path / "lake", keep_versions=100)  # retention is not under test here
    days = [f"event_date=2026-11-0{d}" for d in (1, 2, 3)]

    def publish(n: int) -> None:
        staged = lake.staging(f"run-{n}") / "requests"
        for day in days:
            (staged / day).mkdir(parents=True)
            pq.write_table(pa.table({"version": [n] * 5}), staged / day / f"part-{n}.parquet")
        built = lake.build_version("requests", f"run-{n}", add=[staged], drop_partitions=set(days))
        lake.publish(f"run-{n}", {"requests": built})

    publish(0)
    seen: list[set[int]] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            snapshot = lake.current("requests")  # resolved once: what `enumwatch sql` reads
            seen.append(set(ds.dataset(snapshot, partitioning="hive").to_table()["version"].to_pylist()))
            # Through the link, as DuckDB and Spark by path do: one version, or (when a swap falls between
            # listing and opening) file-not-found for a file the newer version dropped; never a mix.
            with contextlib.suppress(FileNotFoundError):
                seen.append(
                    set(ds.dataset(lake.path("requests"), partitioning="hive").to_table()["version"].to_pylist())
                )

    reader = threading.Thread(target=read)
    reader.start()
    for n in range(1, 40):
        publish(n)
    done.set()
    reader.join(timeout=30)
    assert len(seen) > 10
    assert all(len(versions) == 1 for versions in seen), [v for v in seen if len(v) != 1]

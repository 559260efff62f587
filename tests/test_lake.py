"""The lake: one key per lake, one writer at a time, versions swapped all or nothing, old versions collected."""

from __future__ import annotations

import json
import os

import pytest

from core.lake import Lake, LakeError
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
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


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

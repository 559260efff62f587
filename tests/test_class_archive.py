"""The JVM class archive: named after the Java build, mapped only when present, built by a real training JVM."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs import class_archive


def _fake_java(home: Path) -> Path:
    (home / "bin").mkdir(parents=True)
    (home / "lib" / "server").mkdir(parents=True)
    (home / "bin" / "java").write_text("")
    libjvm = home / "lib" / "server" / "libjvm.so"
    libjvm.write_text("build 1")
    return libjvm


def test_an_upgraded_java_gets_a_new_archive_name(tmp_path, monkeypatch):
    libjvm = _fake_java(tmp_path / "jdk")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    before = class_archive.archive_path()
    libjvm.write_text("build 2, a longer file")
    after = class_archive.archive_path()
    assert before is not None and after is not None
    assert before != after
    assert before.parent == after.parent and before.suffix == ".jsa"


def test_without_java_there_is_no_archive_and_build_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    assert class_archive.archive_path() is None
    assert class_archive.java_options() == ""
    with pytest.raises(RuntimeError, match="Java not found"):
        class_archive.build()


def test_a_missing_archive_adds_no_jvm_options(tmp_path):
    assert class_archive.java_options(tmp_path / "spark-classes-x.jsa") == ""


def test_an_archive_is_mapped_with_jvm_warnings_on_stderr(tmp_path):
    archive = tmp_path / "spark-classes-x.jsa"
    archive.write_bytes(b"archive")
    options = class_archive.java_options(archive)
    assert f"-XX:SharedArchiveFile={archive}" in options
    assert "-Xlog:all=warning:stderr" in options  # never into stdout, where --json goes


def test_a_spark_conf_dir_with_files_leaves_the_archive_out(tmp_path, monkeypatch):
    archive = tmp_path / "spark-classes-x.jsa"
    archive.write_bytes(b"archive")
    conf = tmp_path / "conf"
    conf.mkdir()
    monkeypatch.setenv("SPARK_CONF_DIR", str(conf))
    assert class_archive.java_options(archive) != ""  # an empty directory is no obstacle
    (conf / "spark-defaults.conf").write_text("spark.eventLog.enabled true\n")
    assert class_archive.java_options(archive) == ""  # Java 17 refuses a non-empty directory on the class path


def test_build_keeps_an_archive_that_is_there(tmp_path):
    archive = tmp_path / "spark-classes-x.jsa"
    archive.write_bytes(b"archive")
    assert class_archive.build(archive) == archive
    assert archive.read_bytes() == b"archive"


@pytest.mark.spark
def test_the_archive_make_builds_is_whole_and_a_spark_jvm_maps_it(tmp_path):
    archive = class_archive.build()  # `make test` built it already; a bare pytest builds it here
    assert sorted(p.name for p in archive.parent.iterdir()) == [archive.name]  # no partial file, no older archive
    app = tmp_path / "count.py"
    app.write_text("from pyspark.sql import SparkSession\nprint(SparkSession.builder.getOrCreate().range(3).count())\n")
    # -Xshare:on turns "cannot map it" (another Java build, another classpath, a bad file) into an error.
    mapped = class_archive.spark_submit(app, java_options=f"-XX:SharedArchiveFile={archive} -Xshare:on")
    assert (mapped.returncode, mapped.stdout.strip()) == (0, "3"), mapped.stderr[-2000:]

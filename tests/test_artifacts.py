import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlclip_cli.artifacts import MANIFEST, manifest_from_rows, read_manifest, read_metadata, write_manifest
from mlclip_cli.atomic import atomic_path
from mlclip_cli.errors import ArtifactError


def _rows(n=3):
    return [
        {"sample_id": f"s{i}", "image_id": f"i{i // 2}", "image_path": None, "language": "en",
         "caption": f"caption {i}", "split": "test", "source": "unit", "pair_id": f"p{i}"}
        for i in range(n)
    ]


def test_manifest_round_trip_keeps_schema_and_values(tmp_path):
    path = write_manifest(manifest_from_rows(_rows()), tmp_path / "m.parquet")
    table = read_manifest(path)
    assert table.schema.equals(MANIFEST.schema)
    assert table.column("caption").to_pylist() == ["caption 0", "caption 1", "caption 2"]
    assert read_metadata(path)["artifact"] == "manifest"


def test_reader_names_file_and_missing_column(tmp_path):
    path = tmp_path / "bad.parquet"
    table = manifest_from_rows(_rows()).drop_columns(["caption"])
    pq.write_table(table, path)
    with pytest.raises(ArtifactError, match=r"bad\.parquet: column 'caption' is missing"):
        read_manifest(path)


def test_reader_rejects_wrong_type_and_nulls(tmp_path):
    path = tmp_path / "typed.parquet"
    table = manifest_from_rows(_rows()).set_column(4, "caption", pa.array([[1], [2], [3]]))
    pq.write_table(table, path)
    with pytest.raises(ArtifactError, match="column 'caption' has type"):
        read_manifest(path)
    nulls = manifest_from_rows(_rows()).set_column(3, "language", pa.array([None, "en", "en"], pa.string()))
    pq.write_table(nulls, path)
    with pytest.raises(ArtifactError, match="column 'language' has 1 empty values"):
        read_manifest(path)


def test_corrupt_parquet_is_a_clear_error(tmp_path):
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ArtifactError, match="corrupt.parquet: not a readable Parquet file"):
        read_manifest(path)
    with pytest.raises(ArtifactError, match="no such manifest file"):
        read_manifest(tmp_path / "absent.parquet")


def test_writer_validates_before_writing(tmp_path):
    rows = _rows()
    rows[1]["sample_id"] = "s0"
    with pytest.raises(ArtifactError, match="duplicate"):
        write_manifest(manifest_from_rows(rows), tmp_path / "dup.parquet")
    assert not (tmp_path / "dup.parquet").exists()


def test_failing_writer_leaves_no_file(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []


def test_failing_writer_keeps_the_previous_file(tmp_path):
    target = tmp_path / "m.parquet"
    write_manifest(manifest_from_rows(_rows(2)), target)
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"garbage")
            raise RuntimeError("crash")
    assert read_manifest(target).num_rows == 2

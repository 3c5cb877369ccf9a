"""A results file says where it was measured: the checkout's own commit, the machine and the date."""

import subprocess
from pathlib import Path

from mlclip_cli import provenance

ROOT = Path(__file__).resolve().parents[1]


def test_the_record_names_this_checkouts_commit_machine_and_date():
    record = provenance.provenance("mlclip bench xtd")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert record["command"] == "mlclip bench xtd"
    assert record["commit"] == head and isinstance(record["dirty"], bool)
    assert record["machine"]["cpus"] >= 1 and record["machine"]["torch"]
    assert record["date"].endswith("Z") and len(record["date"]) == 20


def test_a_repository_around_an_installed_package_is_not_named(monkeypatch, tmp_path):
    project = tmp_path / "someone-elses-project"  # a git repository with a virtualenv inside it
    packages = project / ".venv" / "lib" / "site-packages"
    packages.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    subprocess.run(["git", "-C", str(project), "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q",
                    "--allow-empty", "-m", "theirs"], check=True)
    provenance.code_commit.cache_clear()
    monkeypatch.setattr(provenance, "_CHECKOUT", packages.resolve())
    try:
        record = provenance.code_commit()
    finally:
        provenance.code_commit.cache_clear()
    assert record["commit"] is None and "version" in record

"""The exported champion is readable as the umask says (other users' scoring jobs read it)."""

from __future__ import annotations

import os
import stat


def test_the_export_follows_the_umask(tmp_path, trained_project):
    import mlflow

    from winmodel.mlops.export import export_model

    mlflow.set_tracking_uri(trained_project.tracking_uri)
    previous = os.umask(0o022)
    try:
        local = export_model(
            "models:/winmodel/1", tmp_path / "models" / "champion", extra_files={"NOTE.md": "x"}
        )
    finally:
        os.umask(previous)
    assert stat.S_IMODE(local.stat().st_mode) == 0o755  # mkdtemp alone would give 0700
    assert stat.S_IMODE((local / "NOTE.md").stat().st_mode) == 0o644
    for path in local.rglob("*"):
        assert path.stat().st_mode & 0o044 == 0o044, path  # group and others may read

"""The validate job: check an export against the contract and give the report.

The data comes from ``--data``/``--mapping`` or from the ``data:`` section of
a pipeline config (``path:`` and optional ``mapping:``); flags override the
config. Relative paths in the config are taken from the current folder (the
project root, where ``make`` runs).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from winmodel.data.database import DatabaseSource
from winmodel.data.dataset import load_crm_data
from winmodel.data.yamlfile import read_yaml
from winmodel.errors import InputError, Problem, ValidationReport
from winmodel.settings import DataSource


def read_data_section(config: Path) -> tuple[Path | DatabaseSource, Path | None]:
    """Give the data path and the mapping path (or None) named in a job config's ``data:`` section.

    Reads only ``data:`` (a training or a scoring config alike), strictly. Raises
    ``InputError`` naming the file when it is missing, not YAML, or has no ``data.path``.
    """
    config = Path(config)
    name = str(config)
    if not config.is_file():
        raise InputError(
            Problem(
                file=name,
                column=None,
                problem="the config file does not exist",
                fix="check the path, e.g. pipelines/train.yaml",
            )
        )
    document, _ = read_yaml(config)
    data = document.get("data") if isinstance(document, dict) else None
    if isinstance(data, dict) and data.get("source"):
        try:
            section = DataSource.model_validate(data)
        except ValidationError as error:
            raise InputError(
                Problem(
                    file=name,
                    column=None,
                    problem=f"the `data:` section is invalid: {error.errors()[0]['msg']}",
                    fix="correct it; pipelines/train-duckdb.yaml shows a database source",
                )
            ) from None
        return section.location(), section.mapping
    if not isinstance(data, dict) or not data.get("path"):
        raise InputError(
            Problem(
                file=name,
                column=None,
                problem="the config has no `data: {path: ...}`",
                fix="add a `data:` section with `path:` (and optional `mapping:`)",
            )
        )
    mapping = data.get("mapping")
    return Path(str(data["path"])), Path(str(mapping)) if mapping else None


def run_validate(
    *,
    data: Path | str | None = None,
    mapping: Path | None = None,
    config: Path | None = None,
) -> ValidationReport:
    """Give the validation report of an export: every error and warning, and the facts.

    Input faults (unreadable files, a bad mapping, invalid data) are in the
    report, not raised. ``data``/``mapping`` override the config's.
    """
    try:
        location: Path | DatabaseSource | None = DataSource().location(data) if data else None
        if config is not None:
            config_data, config_mapping = read_data_section(config)
            location = location or config_data
            mapping = mapping or config_mapping
        if location is None:
            raise InputError(
                Problem(
                    file="(command line)",
                    column=None,
                    problem="no data to validate",
                    fix="give --data PATH or --config FILE",
                )
            )
        return load_crm_data(location, mapping).report
    except InputError as error:
        return error.report

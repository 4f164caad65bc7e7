"""The export-crm job: a scored file -> an upsert file in the CRM's own field names and limits."""

from __future__ import annotations

import logging
from pathlib import Path

from winmodel.data.io import neutralise_spreadsheet_formulas, read_table, write_table_atomic
from winmodel.data.mapping import load_mapping
from winmodel.data.writeback import crm_upsert
from winmodel.errors import InputError, Problem

log = logging.getLogger("winmodel")


def run_export_crm(input_path: Path, mapping_path: Path, out: Path) -> int:
    """Write the upsert file for the mapping's CRM from a scored file; give the number of rows.

    Raises InputError when the mapping has no ``write_back:`` section, or the scored file cannot
    be used (see :func:`winmodel.data.writeback.crm_upsert`). The file is written atomically.
    """
    mapping = load_mapping(mapping_path)
    if mapping.write_back is None:
        raise InputError(
            Problem(
                file=str(mapping_path),
                column=None,
                problem="the mapping has no `write_back:` section, so winmodel does not know the "
                "CRM's field names",
                fix="add one (pipelines/mappings/salesforce.yaml and hubspot.yaml show it)",
            )
        )
    scored = read_table(input_path)
    upsert = crm_upsert(scored, mapping.write_back, file=str(input_path))
    out = Path(out)
    if out.suffix.lower() == ".csv":
        upsert = neutralise_spreadsheet_formulas(upsert)
    write_table_atomic(upsert, out)
    log.info(
        "wrote %s: %d %s records (%s)",
        out,
        len(upsert),
        mapping.write_back.crm,
        ", ".join(upsert.columns),
    )
    return len(upsert)

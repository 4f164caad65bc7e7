"""The canonical CRM data: the contract, reading files, mapping an export, validation."""

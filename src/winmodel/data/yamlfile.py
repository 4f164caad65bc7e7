"""The one YAML reader for what people write: job configs, mappings and message catalogues.

Strict where YAML is lenient, so a typo cannot change a job silently:

* a key given twice in one mapping is an error (plain YAML keeps the last one);
* only ``true`` and ``false`` are booleans (YAML 1.2); the YAML 1.1 words
  ``yes``, ``no``, ``on``, ``off``, ``y``, ``n`` written bare as a value are an
  error that says to write ``true``/``false`` or to quote the word, since older
  readers take ``no`` for false and newer ones for the text "no" (keys are
  names and always read as text: a lookup's ``on:``);
* every error names the file, the line and the column.

:func:`read_yaml` gives the parsed content and the node tree (for the line of a
key in later messages); :func:`line_of` finds that line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from winmodel.data.io import read_text_file
from winmodel.errors import InputError, Problem

#: Bare words YAML 1.1 reads as booleans and YAML 1.2 as text.
AMBIGUOUS_BOOLEANS = frozenset({"yes", "no", "on", "off", "y", "n"})


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false."""


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def read_yaml(path: Path, text: str | None = None) -> tuple[Any, yaml.Node | None]:
    """Give the content of a YAML file and its node tree; raise InputError listing every problem with its line.

    ``text`` is the file's content when the caller has read it already.
    """
    path = Path(path)
    name = str(path)
    if text is None:
        text = read_text_file(path)  # missing, a folder or not UTF-8: an InputError naming the file
    try:
        node = yaml.compose(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        # An unclosed bracket or quote is found only at the end of the file: name where it opened.
        opened = error.context_mark
        started = (
            f" ({error.context} that starts on line {opened.line + 1})"
            if error.context
            and opened is not None
            and mark is not None
            and opened.line != mark.line
            else ""
        )
        raise InputError(
            Problem(
                file=name,
                column=None,
                problem=f"{where}the YAML cannot be read: {error.problem or error}{started}",
                fix="fix the YAML at that place (indentation, a missing ':' or an unclosed quote)",
            )
        ) from None
    except yaml.YAMLError as error:
        raise InputError(
            Problem(
                file=name,
                column=None,
                problem=f"the YAML cannot be read: {error}",
                fix="fix the YAML",
            )
        ) from None
    problems = _duplicate_keys(node, name) + _ambiguous_booleans(node, name)
    if problems:
        raise InputError(problems)
    content = _StrictLoader(text).get_single_data() if node is not None else None
    return content, node


def _duplicate_keys(node: yaml.Node | None, file: str) -> list[Problem]:
    """Give a problem for each key written twice in one YAML mapping."""
    problems = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if key.value in seen:
                problems.append(
                    Problem(
                        file=file,
                        column=None,
                        problem=f"line {key.start_mark.line + 1}: the key '{key.value}' is given twice "
                        f"(first on line {seen[key.value]})",
                        fix="keep one of them",
                    )
                )
            seen[key.value] = key.start_mark.line + 1
            problems += _duplicate_keys(value, file)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            problems += _duplicate_keys(item, file)
    return problems


def _ambiguous_booleans(node: yaml.Node | None, file: str) -> list[Problem]:
    """Give a problem for each bare yes/no/on/off/y/n written as a value."""
    problems = []
    if isinstance(node, yaml.ScalarNode):
        if node.style is None and node.value.lower() in AMBIGUOUS_BOOLEANS:
            mark = node.start_mark
            problems.append(
                Problem(
                    file=file,
                    column=None,
                    problem=f"line {mark.line + 1}, column {mark.column + 1}: '{node.value}' is a boolean in YAML 1.1 "
                    "and the text in YAML 1.2",
                    fix=f"write true or false for a setting, or quote it ('{node.value}') for the word itself",
                )
            )
    elif isinstance(node, yaml.MappingNode):
        for _, value in node.value:  # keys are names (the lookup key `on:`), always read as text
            problems += _ambiguous_booleans(value, file)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            problems += _ambiguous_booleans(item, file)
    return problems


def line_of(node: yaml.Node | None, location: tuple[Any, ...]) -> int | None:
    """Give the 1-based line of the key or item at ``location`` (or of the deepest one found)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in location:
        if isinstance(node, yaml.MappingNode):
            match = next(
                ((key, value) for key, value in node.value if key.value == str(part)), None
            )
            if match is None:
                return line
            line, node = match[0].start_mark.line + 1, match[1]
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line

"""The one strict YAML reader: configs, mappings and catalogues read the same way."""

from __future__ import annotations

import pytest

from winmodel.data.mapping import load_mapping
from winmodel.data.yamlfile import read_yaml
from winmodel.errors import InputError
from winmodel.settings import load_score_config, load_train_config


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("seed: 1\ndata:\n  path: a\n  path: b\n")
    with pytest.raises(
        InputError, match=r"line 4: the key 'path' is given twice \(first on line 3\)"
    ):
        load_train_config(path)


@pytest.mark.parametrize("word", ["no", "Yes", "ON", "off", "y", "N"])
def test_yaml_1_1_booleans_are_refused_as_values(tmp_path, word):
    path = tmp_path / "score.yaml"
    path.write_text(
        f"name: x\nworkers: 1\nlanguage: en\ndata:\n  generate_demo_if_missing: {word}\n"
    )
    with pytest.raises(
        InputError, match=rf"line 5, column 29: '{word}' is a boolean in YAML 1\.1"
    ) as error:
        load_score_config(path)
    assert "write true or false" in str(error.value)


def test_quoted_words_and_keys_named_on_are_text(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text(
        "booleans:\n  true_values: ['Yes', \"Y\"]\nvalues:\n  status: {'No': lost, won: won}\n"
        "lookups:\n  - file: accounts.csv\n    on: {account: account}\n"
        "    columns: {industry: sector}\n"
    )
    mapping = load_mapping(path)
    assert mapping.booleans.true_values == ["Yes", "Y"]
    assert mapping.values["status"] == {"No": "lost", "won": "won"}
    assert mapping.lookups[0].on == {"account": "account"}
    content, _ = read_yaml(path)
    assert content["booleans"]["true_values"] == ["Yes", "Y"]


def test_true_and_false_are_booleans(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a: true\nb: False\nc: 'true'\n")
    assert read_yaml(path)[0] == {"a": True, "b": False, "c": "true"}


def test_a_syntax_error_names_its_line_and_where_an_open_bracket_started(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(
        InputError, match=r"line \d+, column \d+: the YAML cannot be read.*starts on line 2"
    ):
        read_yaml(path)


def test_an_invalid_key_in_a_config_names_its_line(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("seed: 1\nmodel:\n  threads: 2\n  treads: 3\n")
    with pytest.raises(InputError, match=r"key 'model\.treads' \(line 4\): unknown key"):
        load_train_config(path)

"""Keyed pseudonyms."""

from __future__ import annotations

import polars as pl
import pytest

from homicide_assets.lib.pseudonym import PseudonymKeyMissing, load_key, pseudonym, pseudonymise_series


def test_same_input_same_key_same_output(key):
    assert pseudonym("9434765919", key, "nhs_number") == pseudonym(" 9434765919 ", key, "nhs_number")


def test_other_key_other_output(key):
    assert pseudonym("9434765919", key) != pseudonym("9434765919", b"another-key-0123456789")


def test_domain_separates(key):
    assert pseudonym("N123", key, "nominal_id") != pseudonym("N123", key, "phone")


def test_nulls_and_blanks_stay_null(key):
    assert pseudonym(None, key) is None and pseudonym("  ", key) is None
    s = pseudonymise_series(pl.Series(["a", None, "a"]), key)
    assert s[0] == s[2] and s[1] is None and s[0] != "a"


def test_key_from_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("HOMICIDE_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("HOMICIDE_PSEUDONYM_KEY_FILE", raising=False)
    with pytest.raises(PseudonymKeyMissing):
        load_key()
    f = tmp_path / "k"
    f.write_text("file-key-0123456789abcdef\n")
    monkeypatch.setenv("HOMICIDE_PSEUDONYM_KEY_FILE", str(f))
    assert load_key() == b"file-key-0123456789abcdef"
    monkeypatch.setenv("HOMICIDE_PSEUDONYM_KEY", "short")
    with pytest.raises(PseudonymKeyMissing):
        load_key()

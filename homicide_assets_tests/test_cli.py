"""The ``homicide-assets`` command line: subcommands an operator uses besides ``build``."""

from __future__ import annotations

from datetime import date

from sqlmodel import select

from homicide_assets.cli import main
from homicide_assets.lib.store import session_scope
from homicide_assets.lib.store.series import SeenSeries, SeriesDecision


def test_series_decision_is_stored_with_who_decided(platform_env, capsys):
    url = platform_env.database_url()
    with session_scope(url) as s:
        s.add(SeenSeries(series_id="S-abc", death_ids="D1;D2", size=2, score=0.9, kinds="shared_person",
                         first_flagged_on=date(2026, 1, 5)))
    assert main(["series-decision", "S-abc", "linked", "--by", "DS 4821", "--note", "same finder"]) == 0
    with session_scope(url) as s:
        [row] = s.exec(select(SeriesDecision)).all()
    assert (row.series_id, row.decision, row.decided_by, row.size_at_decision) == ("S-abc", "linked", "DS 4821", 2)
    assert "recorded: series S-abc linked" in capsys.readouterr().out


def test_series_decision_refuses_unknown_series_and_decisions(platform_env, capsys):
    assert main(["series-decision", "S-nope", "linked", "--by", "DS 4821"]) == 2
    assert "no series 'S-nope'" in capsys.readouterr().err
    with session_scope(platform_env.database_url()) as s:
        s.add(SeenSeries(series_id="S-abc", death_ids="D1;D2", size=2, score=0.9, kinds="shared_person"))
    assert main(["series-decision", "S-abc", "maybe", "--by", "DS 4821"]) == 2
    with session_scope(platform_env.database_url()) as s:
        assert s.exec(select(SeriesDecision)).all() == []


def test_ledger_lists_nothing_on_an_empty_data_directory(platform_env, capsys):
    assert main(["ledger"]) == 0
    assert "0 deliveries" in capsys.readouterr().out


def test_build_without_a_key_uses_a_private_key_file_beside_the_data(platform_env, monkeypatch, capsys):
    from homicide_assets.cli import _ensure_pseudonym_key

    monkeypatch.delenv("HOMICIDE_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("HOMICIDE_PSEUDONYM_KEY_FILE", raising=False)
    _ensure_pseudonym_key(platform_env)
    key_file = platform_env.root / ".pseudonym_key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    first = key_file.read_text()
    assert len(first.strip()) == 64
    assert "HOMICIDE_PSEUDONYM_KEY is not set" in capsys.readouterr().err
    monkeypatch.delenv("HOMICIDE_PSEUDONYM_KEY_FILE")
    _ensure_pseudonym_key(platform_env)  # a second build keeps the same key: stable pseudonyms
    assert key_file.read_text() == first


def test_a_configured_key_is_never_replaced(platform_env, monkeypatch):
    from homicide_assets.cli import _ensure_pseudonym_key

    monkeypatch.setenv("HOMICIDE_PSEUDONYM_KEY", "configured-key-0123456789abcdef")
    _ensure_pseudonym_key(platform_env)
    assert not (platform_env.root / ".pseudonym_key").exists()


def test_a_file_still_being_written_during_the_wait_between_looks_is_not_taken(platform_env):
    """``build`` loads Great Expectations between its two looks at landing: whatever runs there,
    the second look comes after it, so a file that grew meanwhile waits for the next build."""
    from pathlib import Path

    from homicide_assets.cli import take_landing
    from homicide_assets.lib.settings import SEEDS_DIR

    sample = Path(SEEDS_DIR) / "sample_deliveries" / "landing" / "wmp"
    steady, growing = sorted(sample.glob("wmp__death_reports__*.csv"))[:2]
    folder = platform_env.root / "landing" / "wmp"
    folder.mkdir(parents=True)
    for src in (steady, growing):
        (folder / src.name).write_bytes(src.read_bytes())
    calls = []

    def still_writing() -> None:
        calls.append(1)
        with (folder / growing.name).open("ab") as out:
            out.write(b"\r\n")

    outcome, pending = take_landing(platform_env, interval=0.2, while_waiting=still_writing)
    assert calls == [1]
    assert [d.file_name for d in outcome.accepted] == [steady.name]
    assert (folder / growing.name).exists() and not (folder / steady.name).exists()
    assert pending

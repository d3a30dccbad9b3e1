"""Themes of review recommendations: a transparent phrase classifier whose rules are data.

The rules live in ``seeds/recommendation_themes.csv`` and are reviewed like code. Each row
is one of:

- ``definition``: what the theme means (the labelling guide for the sample in
  ``homicide_assets_tests/data/labelled_recommendations.csv``);
- ``phrase``: a regular expression (Rust ``regex`` syntax, matched case-insensitively
  against the recommendation text); any match assigns the theme;
- ``unless``: a regular expression that, when it matches, withdraws the theme (for
  readings of a word that mean something else, e.g. the supervision of offenders).

A recommendation gets every theme with a matching phrase and no matching ``unless``; the
phrase that matched is kept as evidence, so an analyst can see why each theme was given.
Precision and recall per theme are measured on the labelled sample by
:func:`evaluate_themes` (``scripts/theme_eval.py`` prints them; ``test_themes.py`` holds
the thresholds).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from homicide_assets.lib.settings import SEEDS_DIR

THEME_RULES_PATH = SEEDS_DIR / "recommendation_themes.csv"
RULE_KINDS = ("definition", "phrase", "unless")


@dataclass(frozen=True)
class ThemeRule:
    """One row of the rules file: a theme, what kind of row it is, its pattern and why."""

    theme: str
    kind: str
    pattern: str
    note: str
    line: int


@dataclass(frozen=True)
class ThemeRules:
    """All rules, in file order; ``themes`` in the order they are first defined."""

    rules: tuple[ThemeRule, ...]
    source: str

    @property
    def themes(self) -> list[str]:
        seen: list[str] = []
        for r in self.rules:
            if r.theme not in seen:
                seen.append(r.theme)
        return seen

    @property
    def definitions(self) -> dict[str, str]:
        return {r.theme: r.note for r in self.rules if r.kind == "definition"}

    def of(self, theme: str, kind: str) -> list[ThemeRule]:
        return [r for r in self.rules if r.theme == theme and r.kind == kind]


class ThemeRulesError(ValueError):
    """A rules file that cannot be used; the message names the file, line and problem."""


def load_theme_rules(path: Path | str = THEME_RULES_PATH) -> ThemeRules:
    """Read and check the rules file: known kinds, compilable patterns, one definition per theme."""
    path = Path(path)
    rules: list[ThemeRule] = []
    with path.open(newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.DictReader(fh), start=2):
            theme, kind = (row.get("theme") or "").strip(), (row.get("kind") or "").strip()
            pattern, note = (row.get("pattern") or "").strip(), (row.get("note") or "").strip()
            where = f"{path.name}: line {i}"
            if not theme:
                raise ThemeRulesError(f"{where}: theme is required")
            if kind not in RULE_KINDS:
                raise ThemeRulesError(f"{where}: kind must be one of {', '.join(RULE_KINDS)}, not {kind!r}")
            if kind != "definition":
                if not pattern:
                    raise ThemeRulesError(f"{where}: a {kind} row needs a pattern")
                try:  # compiled by the same engine that applies it
                    pl.select(pl.lit("x").str.contains(f"(?i){pattern}"))
                except Exception as exc:  # noqa: BLE001 - the engine's own message is the useful part
                    raise ThemeRulesError(f"{where}: pattern does not compile: {exc}") from exc
            rules.append(ThemeRule(theme, kind, pattern, note, i))
    out = ThemeRules(tuple(rules), str(path))
    for theme in out.themes:
        if len(out.of(theme, "definition")) != 1:
            raise ThemeRulesError(f"{path.name}: theme {theme!r} needs exactly one definition row")
        if not out.of(theme, "phrase"):
            raise ThemeRulesError(f"{path.name}: theme {theme!r} has no phrase rule")
    return out


def _normalised(text: pl.Expr) -> pl.Expr:
    return text.fill_null("").str.replace_all("[\u2018\u2019`]", "'").str.replace_all(r"\s+", " ")


def theme_expressions(rules: ThemeRules, text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(themes list[str], evidence list[str]) expressions over a text column.

    Evidence reads ``theme: "matched words"`` for the first phrase that matched per theme.
    """
    t = _normalised(text)
    flags, evidence = [], []
    for theme in rules.themes:
        phrases = rules.of(theme, "phrase")
        hit = pl.any_horizontal([t.str.contains(f"(?i){r.pattern}") for r in phrases])
        unless = rules.of(theme, "unless")
        if unless:
            hit = hit & ~pl.any_horizontal([t.str.contains(f"(?i){r.pattern}") for r in unless])
        matched = pl.coalesce([t.str.extract(f"(?i)({r.pattern})", 1) for r in phrases])
        flags.append(pl.when(hit).then(pl.lit(theme)).otherwise(None))
        evidence.append(
            pl.when(hit).then(pl.concat_str([pl.lit(f'{theme}: "'), matched.str.to_lowercase(), pl.lit('"')]))
            .otherwise(None)
        )
    themes = pl.concat_list(flags).list.drop_nulls()
    reasons = pl.concat_list(evidence).list.drop_nulls()
    return themes, reasons


def classify(frame: pl.DataFrame, rules: ThemeRules | None = None,
             text_column: str = "recommendation_text") -> pl.DataFrame:
    """``frame`` with ``themes`` (list[str], in rules order) and ``theme_evidence`` added."""
    rules = rules or load_theme_rules()
    themes, evidence = theme_expressions(rules, pl.col(text_column))
    return frame.with_columns(themes.alias("themes"), evidence.alias("theme_evidence"))


def load_labelled(path: Path | str) -> pl.DataFrame:
    """The labelled sample: sample_id, review_type, recommendation_text, themes (list), split."""
    frame = pl.read_csv(path, infer_schema=False)
    return frame.with_columns(
        pl.col("themes").fill_null("").str.split(";").list.eval(pl.element().filter(pl.element() != "")).alias("labels")
    ).drop("themes")


def evaluate_themes(labelled: pl.DataFrame, rules: ThemeRules | None = None) -> pl.DataFrame:
    """Precision, recall and F1 per theme of the classifier against ``labels``.

    ``labelled`` needs ``recommendation_text`` and ``labels`` (list[str]). One row per theme
    in the rules plus an ``all (micro)`` row; precision is null when the theme was never
    predicted, recall null when no sample carries the label.
    """
    rules = rules or load_theme_rules()
    predicted = classify(labelled, rules)
    rows = []
    totals = {"tp": 0, "fp": 0, "fn": 0}
    for theme in rules.themes:
        c = predicted.select(
            pred=pl.col("themes").list.contains(theme),
            gold=pl.col("labels").list.contains(theme),
        ).select(
            tp=(pl.col("pred") & pl.col("gold")).sum(),
            fp=(pl.col("pred") & ~pl.col("gold")).sum(),
            fn=(~pl.col("pred") & pl.col("gold")).sum(),
        ).row(0, named=True)
        for k in totals:
            totals[k] += c[k]
        rows.append({"theme": theme, **c})
    rows.append({"theme": "all (micro)", **totals})
    out = pl.DataFrame(rows, schema={"theme": pl.String, "tp": pl.Int64, "fp": pl.Int64, "fn": pl.Int64})
    precision = pl.when((pl.col("tp") + pl.col("fp")) > 0).then(pl.col("tp") / (pl.col("tp") + pl.col("fp")))
    recall = pl.when((pl.col("tp") + pl.col("fn")) > 0).then(pl.col("tp") / (pl.col("tp") + pl.col("fn")))
    out = out.with_columns(
        support=pl.col("tp") + pl.col("fn"), precision=precision, recall=recall,
    ).with_columns(
        f1=pl.when((pl.col("precision") + pl.col("recall")) > 0)
        .then(2 * pl.col("precision") * pl.col("recall") / (pl.col("precision") + pl.col("recall")))
    )
    return out.select("theme", "support", "tp", "fp", "fn", "precision", "recall", "f1")


def misclassified(labelled: pl.DataFrame, rules: ThemeRules | None = None) -> pl.DataFrame:
    """Samples whose predicted themes differ from their labels, with what was missed and added."""
    predicted = classify(labelled, rules)
    return predicted.with_columns(
        missed=pl.col("labels").list.set_difference(pl.col("themes")),
        extra=pl.col("themes").list.set_difference(pl.col("labels")),
    ).filter((pl.col("missed").list.len() > 0) | (pl.col("extra").list.len() > 0))

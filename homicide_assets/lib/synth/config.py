"""Scales, the fixed calendar and the noise parameters of the synthetic generator.

Everything that decides *how much* and *how noisy* lives here, so a benchmark or a test can
read the exact parameters a dataset was generated with (they are also written to
``ground_truth/summary.json``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date, timedelta

#: Last day of every generated period. Fixed so output never depends on today's date;
#: nothing generated is later than this (and so never later than 2026-11-26).
PERIOD_END = date(2026, 9, 30)
#: No generated date (not even a due date) is later than this.
LATEST_DATE = date(2026, 11, 26)


@dataclass(frozen=True)
class Scale:
    """How much to generate.

    ``volume`` multiplies the West Midlands' real annual volumes (1.0 = one force's year);
    ``years`` is the length of the period ending on :data:`PERIOD_END`; deliveries follow
    each partner's cadence over the last ``delivery_window_days`` of the period, everything
    older arriving in one initial (backfill) extract per partner feed at the window start,
    as when a data sharing agreement goes live.
    """

    name: str
    volume: float
    years: int
    delivery_window_days: int
    description: str = ""

    @property
    def period_start(self) -> date:
        return date(PERIOD_END.year - self.years, PERIOD_END.month, PERIOD_END.day) + timedelta(days=1)

    @property
    def window_start(self) -> date:
        start = PERIOD_END - timedelta(days=self.delivery_window_days - 1)
        return max(start, self.period_start)

    @property
    def force_years(self) -> float:
        """Volume in force-years (volume times years): the unit that expected counts scale by."""
        return self.volume * self.years


SCALES: dict[str, Scale] = {
    "tiny": Scale(
        "tiny",
        volume=0.018,
        years=1,
        delivery_window_days=56,
        description="CI and the committed sample: ~500 deaths, ~100 police reports, one of each series kind",
    ),
    "force-year": Scale(
        "force-year",
        volume=1.0,
        years=1,
        delivery_window_days=365,
        description="one West Midlands year: ~28,000 deaths, ~3,500 police death reports",
    ),
    "force-decade": Scale(
        "force-decade",
        volume=1.0,
        years=10,
        delivery_window_days=365,
        description="ten West Midlands years; the last year on cadence, the nine before in one backfill",
    ),
    "national-year": Scale(
        "national-year",
        volume=17.0,
        years=1,
        delivery_window_days=365,
        description="17x a force-year through the same partners (England and Wales is ~20x the West Midlands)",
    ),
}


@dataclass(frozen=True)
class NoiseParams:
    """Rates of real-world recording noise, per source record unless stated.

    Defaults are set so that linkage is honestly hard: exact name and date of birth matching
    misses roughly one record in five, NHS numbers are missing from most police records, and
    namesakes exist. Feed-specific multipliers live in :mod:`homicide_assets.lib.synth.noise`
    (NHS medical examiner data is traced against the NHS Spine and is cleaner; police and
    local authority records are typed from conversation and are noisier).
    """

    #: one-character typo (deletion, transposition, substitution, doubling) in a name
    typo_rate: float = 0.04
    #: a known nickname instead of the formal forename (Bob for Robert)
    nickname_rate: float = 0.10
    #: birth surname instead of the married one, or one half of a double-barrelled name
    surname_variant_rate: float = 0.35
    #: day and month swapped in the date of birth (when the day is 12 or less)
    dob_swap_rate: float = 0.02
    #: one digit of the date of birth wrong (year or day off by a small amount)
    dob_typo_rate: float = 0.015
    #: date of birth left blank (feeds where it is optional)
    dob_missing_rate: float = 0.06
    #: share of police death reports with an NHS number
    nhs_present_police: float = 0.25
    #: share of medical examiner records with an NHS number
    nhs_present_me: float = 0.97
    #: share of local authority contacts with an NHS number
    nhs_present_la: float = 0.55
    #: a valid NHS number that belongs to somebody else (a relative's, mis-keyed)
    nhs_wrong_person_rate: float = 0.0005
    #: a record carries the person's previous address (they moved)
    moved_postcode_rate: float = 0.30
    #: share of persons who moved in the last years (have a previous postcode)
    mover_share: float = 0.15
    #: postcode left blank
    postcode_missing_rate: float = 0.10
    #: postcode typed without the space or in lower case
    postcode_format_rate: float = 0.15
    #: name in upper or lower case instead of title case
    case_rate: float = 0.12
    #: stray leading, trailing or double spaces in a name
    space_rate: float = 0.03
    #: share of generated persons who get a namesake (another person with the same name and a
    #: date of birth within three years)
    namesake_rate: float = 0.03
    #: a police death report of a body not yet identified (``unknown``), named in a later extract
    unidentified_rate: float = 0.006
    #: share of daily or weekly files followed by a same-day corrected extract (``__2``)
    corrected_extract_rate: float = 0.03

    @classmethod
    def from_kwargs(cls, **kwargs: float) -> NoiseParams:
        """Defaults overridden by keyword; unknown names raise ``TypeError`` naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(
                f"unknown noise parameter(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return replace(cls(), **kwargs)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class ComplianceScenario:
    """Partners who deliver late or stop delivering, so compliance checks have something to find.

    ``late``: (partner_id, feed) whose every ``late_every``-th extract arrives 2-6 days after it
    was due (the file carries the late date). ``non_responders``: (partner_id, feed) that stop
    delivering after ``stop_fraction`` of the delivery window. ``skipped``: (partner_id, feed)
    that miss one due extract in the window (the next extract carries its records).
    """

    late: tuple[tuple[str, str], ...] = (("dgft", "me_deaths"), ("coroner_bc", "inquests"))
    late_every: int = 3
    non_responders: tuple[tuple[str, str], ...] = (("walsall", "safeguarding_contacts"),)
    stop_fraction: float = 0.6
    skipped: tuple[tuple[str, str], ...] = (("uhcw", "ed_assaults"), ("coroner_cov", "inquests"))


@dataclass(frozen=True)
class SynthConfig:
    """Everything one generation run depends on (with the seed)."""

    scale: Scale
    seed: int
    noise: NoiseParams = field(default_factory=NoiseParams)
    compliance: ComplianceScenario = field(default_factory=ComplianceScenario)
    faults: bool = False

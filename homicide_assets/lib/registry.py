"""The partner registry and data sharing agreements, loaded from ``seeds/``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from homicide_assets.lib.settings import SEEDS_DIR


@dataclass(frozen=True)
class Partner:
    partner_id: str
    organisation: str
    sector: str
    org_code: str | None


@dataclass(frozen=True)
class PartnerFeed:
    partner_id: str
    feed: str
    cadence_days: int | None  # None: delivered on publication, nothing owed


@dataclass(frozen=True)
class Agreement:
    agreement_id: str
    partner_id: str
    signed_on: date
    expires_on: date
    permitted_feeds: frozenset[str]

    def in_force_on(self, day: date) -> bool:
        return self.signed_on <= day <= self.expires_on


@dataclass(frozen=True)
class Registry:
    partners: dict[str, Partner]
    feeds: tuple[PartnerFeed, ...]
    agreements: dict[str, Agreement]  # by partner_id

    def partner(self, partner_id: str) -> Partner | None:
        return self.partners.get(partner_id)

    def feeds_of(self, partner_id: str) -> list[str]:
        return [f.feed for f in self.feeds if f.partner_id == partner_id]

    def cadence_days(self, partner_id: str, feed: str) -> int | None:
        for f in self.feeds:
            if f.partner_id == partner_id and f.feed == feed:
                return f.cadence_days
        return None

    def agreement(self, partner_id: str) -> Agreement | None:
        return self.agreements.get(partner_id)

    def partners_in_sector(self, sector: str) -> list[Partner]:
        return [p for p in self.partners.values() if p.sector == sector]


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def load_registry(seeds_dir: Path = SEEDS_DIR) -> Registry:
    """Read the partner registry and agreements from ``seeds_dir``."""
    partners = {
        r["partner_id"]: Partner(r["partner_id"], r["organisation"], r["sector"], r["org_code"] or None)
        for r in _read(seeds_dir / "partners.csv")
    }
    feeds = tuple(
        PartnerFeed(r["partner_id"], r["feed"], int(r["cadence_days"]) if r["cadence_days"] else None)
        for r in _read(seeds_dir / "partner_feeds.csv")
    )
    agreements = {
        r["partner_id"]: Agreement(
            agreement_id=r["agreement_id"],
            partner_id=r["partner_id"],
            signed_on=date.fromisoformat(r["signed_on"]),
            expires_on=date.fromisoformat(r["expires_on"]),
            permitted_feeds=frozenset(r["permitted_feeds"].split(";")),
        )
        for r in _read(seeds_dir / "agreements.csv")
    }
    return Registry(partners=partners, feeds=feeds, agreements=agreements)


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    return load_registry()


@dataclass(frozen=True)
class LocalAuthority:
    la_code: str
    name: str
    population: int


@lru_cache(maxsize=1)
def local_authorities() -> tuple[LocalAuthority, ...]:
    return tuple(
        LocalAuthority(r["la_code"], r["name"], int(r["population"]))
        for r in _read(SEEDS_DIR / "local_authorities.csv")
    )


@lru_cache(maxsize=1)
def postcode_districts() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for r in _read(SEEDS_DIR / "postcode_districts.csv"):
        out.setdefault(r["la_code"], []).append(r["district"])
    return {k: tuple(v) for k, v in out.items()}

"""Public statistics the synthetic West Midlands is calibrated to, each with its source.

Figures are rounded and, where the West Midlands figure is not published in the form needed,
taken from the England and Wales figure (said so beside it). They shape the synthetic data;
they are not reported as statistics anywhere.

Sources (all Open Government Licence v3.0):

- [ONS-DEATHS] ONS, *Deaths registered in England and Wales: 2022* (577,160 deaths; crude
  rate ~9.7 per 1,000; monthly and age tables).
- [ONS-HOM] ONS, *Homicide in England and Wales: year ending March 2023* (590 homicides;
  appendix tables on method, victim sex and age, relationship to suspect, police force area).
- [ONS-SUI] ONS, *Suicides in England and Wales: 2022 registrations* (5,642 suicides,
  10.7 per 100,000; 74% male; method and age tables).
- [ONS-DRUG] ONS, *Deaths related to drug poisoning in England and Wales: 2022
  registrations* (4,907 deaths; about two thirds male; opiates in 46%, cocaine in 17%).
- [ONS-NITAZENE] ONS, *Deaths related to drug poisoning, 2023 registrations* and the
  National Crime Agency's 2024 statements (nitazenes rising but a small share of deaths).
- [DFT-RRC] DfT, *Reported road casualties Great Britain, annual report: 2022* (1,711 killed;
  77% of fatalities male).
- [OHID-POD] OHID, *Palliative and end of life care profiles* (place of death, England 2022:
  hospital 44%, home 29%, care home 21%, hospice 5%).
- [MOJ-COR] MoJ, *Coroners statistics 2022: England and Wales* (195,000 deaths reported to
  coroners, ~37,000 inquests opened; conclusions mix; ~500 PFD reports a year).
- [CARDIFF-ED] Sivarajasingam et al., *Violence in England and Wales in 2022: an accident and
  emergency perspective*, Cardiff University Violence Research Group (ED violence mostly
  male, peak age 18-30, weekend and night-time peaks, summer and New Year peaks).
- [CENSUS-ETH] ONS, *Census 2021, TS021 Ethnic group*, local authority tables.
- [MET-DR] Metropolitan Police Service, 2022: 10,978 death reports (~21% of London's
  registered deaths), quoted in the issue; the West Midlands force serves ~2.9 million people.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------
# Deaths by true category: rates per 100,000 population per year.
# ---------------------------------------------------------------------------------------

#: All-cause deaths per 100,000 a year: ~9.6 per 1,000 in the West Midlands metropolitan
#: county, close to the England and Wales crude rate [ONS-DEATHS].
ALL_CAUSE_RATE = 960.0

#: Rates per 100,000 a year by true category. The remainder of :data:`ALL_CAUSE_RATE` is natural.
CATEGORY_RATE: dict[str, float] = {
    # The West Midlands police force area records ~40-60 homicides a year, ~17 per million
    # people against 9.7 per million nationally [ONS-HOM, police force area table].
    "homicide": 1.7,
    # 10.7 per 100,000 in England and Wales in 2022; the West Midlands region is a little
    # lower [ONS-SUI].
    "suicide": 10.0,
    # 8.4 per 100,000 (84.4 per million) in England and Wales in 2022 [ONS-DRUG].
    "drug": 8.0,
    # 2.6 per 100,000 killed in Great Britain in 2022; lower in a dense metropolitan area [DFT-RRC].
    "road_traffic": 2.0,
    # Accidental falls, fires, drowning and choking, ~14 per 100,000 [ONS-DEATHS, ICD-10 W00-X59].
    "accident": 14.0,
}

#: Share of each category's deaths that the police record as a death report. Together these
#: give ~3,500 reports per force-year (~12% of deaths), the Met's 21% [MET-DR] being higher
#: because London's police attend more sudden deaths in a younger population.
POLICE_REPORT_SHARE: dict[str, float] = {
    "homicide": 1.0,
    "suicide": 0.95,
    "drug": 0.93,
    "road_traffic": 1.0,
    "accident": 0.45,
}
#: Natural deaths the police attend (unexpected deaths not certified by a doctor): by place.
POLICE_NATURAL_SHARE_BY_PLACE: dict[str, float] = {
    "home": 0.25,
    "care_home": 0.03,
    "hospital": 0.004,
    "hospice": 0.0,
    "public_place": 0.9,
    "other": 0.5,
}

#: Share of deaths a medical examiner office scrutinises: nearly all non-coronial deaths since
#: the statutory system began (September 2024); deaths that go straight to the coroner are
#: seen only when first in hospital. Gives ~25,000 per force-year (issue 3).
ME_SHARE: dict[str, float] = {
    "natural": 0.93,
    "accident": 0.45,
    "drug": 0.25,
    "suicide": 0.15,
    "homicide": 0.2,
    "road_traffic": 0.3,
}

#: Share of deaths with an inquest opened: unnatural deaths nearly always; ~2% of natural
#: deaths (industrial disease, deaths in state detention). ~37,000 inquests from ~577,000
#: deaths nationally is ~6.5% [MOJ-COR]; gives ~1,800 per force-year.
INQUEST_SHARE: dict[str, float] = {
    "homicide": 0.9,
    "suicide": 0.97,
    "drug": 0.95,
    "road_traffic": 0.97,
    "accident": 0.85,
    "natural": 0.02,
}
#: Prevention of Future Deaths reports per concluded inquest (~500 a year from ~37,000) [MOJ-COR].
PFD_SHARE = 0.03

# ---------------------------------------------------------------------------------------
# Who dies: sex and age by category.
# ---------------------------------------------------------------------------------------

#: Share male [ONS-HOM 71%; ONS-SUI 74%; ONS-DRUG ~2/3; DFT-RRC 77%; ONS-DEATHS ~50%].
MALE_SHARE: dict[str, float] = {
    "homicide": 0.71,
    "suicide": 0.74,
    "drug": 0.68,
    "road_traffic": 0.77,
    "accident": 0.55,
    "natural": 0.49,
}

#: Age bands (inclusive) with relative weights.
AGE_BANDS: dict[str, dict[tuple[int, int], float]] = {
    # victims by age [ONS-HOM appendix]: children ~7%, 16-24 ~19%, peak 25-44
    "homicide": {
        (0, 15): 7,
        (16, 24): 19,
        (25, 34): 21,
        (35, 44): 17,
        (45, 54): 14,
        (55, 64): 10,
        (65, 74): 6,
        (75, 95): 6,
    },
    # highest rates at 45-54 [ONS-SUI]
    "suicide": {
        (12, 24): 11,
        (25, 34): 16,
        (35, 44): 18,
        (45, 54): 21,
        (55, 64): 17,
        (65, 74): 9,
        (75, 95): 8,
    },
    # median age mid-40s, the 40-49 group highest [ONS-DRUG]
    "drug": {(16, 29): 10, (30, 39): 24, (40, 49): 32, (50, 59): 24, (60, 75): 10},
    # young drivers and older pedestrians [DFT-RRC]
    "road_traffic": {(5, 15): 3, (16, 24): 18, (25, 59): 49, (60, 95): 30},
    # falls dominate: mostly 65+ [ONS-DEATHS, W00-W19]
    "accident": {(0, 15): 2, (16, 44): 10, (45, 64): 13, (65, 84): 40, (85, 102): 35},
    # deaths registered by age [ONS-DEATHS]: ~43% at 85+
    "natural": {(0, 14): 0.6, (15, 44): 2.8, (45, 64): 12, (65, 74): 15, (75, 84): 27, (85, 104): 42.6},
}

# ---------------------------------------------------------------------------------------
# How: methods and substances.
# ---------------------------------------------------------------------------------------

#: Apparent method of killing [ONS-HOM]: sharp instrument ~41%, hitting/kicking ~17%.
HOMICIDE_METHOD: dict[str, float] = {
    "sharp_instrument": 0.42,
    "hitting_kicking": 0.17,
    "blunt_instrument": 0.06,
    "strangulation_asphyxiation": 0.07,
    "shooting": 0.04,
    "poisoning_drugs": 0.03,
    "motor_vehicle": 0.03,
    "burning": 0.02,
    "fall": 0.01,
    "other": 0.08,
    "not_known": 0.07,
}
#: Domestic homicides (partner, ex-partner or family): ~22% of homicides [ONS-HOM relationship
#: tables]; three quarters of their victims are women.
DOMESTIC_HOMICIDE_SHARE = 0.22
DOMESTIC_VICTIM_FEMALE_SHARE = 0.75

#: Suicide method [ONS-SUI]: hanging, strangulation and suffocation ~59%, poisoning ~20%.
SUICIDE_METHOD: dict[str, float] = {
    "hanging": 0.59,
    "poisoning_drugs": 0.20,
    "fall": 0.05,
    "drowning": 0.04,
    "sharp_instrument": 0.03,
    "motor_vehicle": 0.04,
    "other": 0.05,
}
ACCIDENT_METHOD: dict[str, float] = {
    "fall": 0.65,
    "drowning": 0.05,
    "burning": 0.04,
    "other": 0.20,
    "not_known": 0.06,
}
#: Substances mentioned in drug-poisoning deaths, as independent inclusion probabilities
#: [ONS-DRUG: opiates 46%, cocaine 17%; ONS-NITAZENE: nitazenes a few per cent].
DRUG_SUBSTANCES: dict[str, float] = {
    "heroin": 0.42,
    "cocaine": 0.22,
    "crack": 0.08,
    "benzodiazepine": 0.15,
    "alcohol": 0.25,
    "fentanyl": 0.02,
    "nitazene": 0.03,
    "ketamine": 0.02,
    "ghb": 0.01,
    "spice": 0.03,
    "other": 0.25,
}

# ---------------------------------------------------------------------------------------
# Where and when.
# ---------------------------------------------------------------------------------------

#: Place of death [OHID-POD].
PLACE_OF_DEATH: dict[str, float] = {
    "hospital": 0.44,
    "home": 0.29,
    "care_home": 0.21,
    "hospice": 0.05,
    "other": 0.01,
}

#: Relative monthly weights, January first.
#: Natural deaths peak in winter, January ~20% above August [ONS-DEATHS monthly tables].
MONTH_NATURAL = (1.18, 1.08, 1.05, 0.98, 0.95, 0.90, 0.90, 0.88, 0.90, 0.97, 1.03, 1.15)
#: Violence peaks in summer and around New Year [CARDIFF-ED].
MONTH_VIOLENCE = (1.02, 0.90, 0.95, 1.00, 1.05, 1.08, 1.08, 1.05, 1.00, 0.97, 0.94, 1.06)
#: Suicides show a small spring excess [ONS-SUI, month of occurrence].
MONTH_SUICIDE = (0.95, 0.93, 1.02, 1.03, 1.07, 1.02, 1.00, 1.00, 0.98, 1.00, 0.98, 1.00)
#: Weekday weights, Monday first. Violence peaks Friday to Sunday [CARDIFF-ED]; suicides are
#: most frequent on Mondays [ONS-SUI day-of-week analysis].
WEEKDAY_VIOLENCE = (0.85, 0.80, 0.85, 0.90, 1.10, 1.40, 1.30)
WEEKDAY_SUICIDE = (1.12, 1.04, 1.00, 0.98, 0.97, 0.93, 0.96)
WEEKDAY_FLAT = (1, 1, 1, 1, 1, 1, 1)
#: Hour-of-day weights, midnight first: violence concentrates 20:00-04:00 [CARDIFF-ED].
HOUR_VIOLENCE = (10, 9, 8, 6, 4, 2, 1.5, 1.5, 2, 2.5, 3, 3.5, 4, 4, 4, 4.5, 5, 5.5, 6, 7, 8, 9, 10, 11)
#: Sudden deaths are mostly found and reported in the morning and early evening.
HOUR_FOUND = (1, 1, 1, 1, 1, 1.5, 3, 5, 6, 6, 5, 4.5, 4, 4, 4, 4, 4, 4.5, 4.5, 4, 3, 2.5, 2, 1.5)
HOUR_FLAT = (1,) * 24

# ---------------------------------------------------------------------------------------
# Emergency departments (Information Sharing to Tackle Violence).
# ---------------------------------------------------------------------------------------

#: ED assault attendances per 100,000 a year: ~15,000 per force-year (issue 3).
ED_ASSAULT_RATE = 515.0
ED_MALE_SHARE = 0.70  # [CARDIFF-ED]
ED_AGE_BANDS: dict[tuple[int, int], float] = {
    (0, 10): 2,
    (11, 17): 11,
    (18, 30): 40,
    (31, 50): 34,
    (51, 70): 11,
    (71, 100): 2,
}  # [CARDIFF-ED] peak 18-30
ED_WEAPON: dict[str, float] = {
    "body_part": 0.58,
    "knife": 0.07,
    "blunt_object": 0.08,
    "glass_bottle": 0.05,
    "firearm": 0.004,
    "other": 0.07,
    "not_known": 0.146,
}
ED_RELATIONSHIP: dict[str, float] = {
    "stranger": 0.38,
    "acquaintance": 0.24,
    "partner_ex_partner": 0.12,
    "family": 0.08,
    "not_known": 0.18,
}
ED_LOCATION: dict[str, float] = {
    "street": 0.38,
    "licensed_premises": 0.15,
    "dwelling": 0.25,
    "public_open_space": 0.06,
    "retail": 0.05,
    "transport": 0.04,
    "other": 0.07,
}
ED_DISPOSAL: dict[str, float] = {"discharged": 0.76, "admitted": 0.20, "transferred": 0.035, "died": 0.005}

# ---------------------------------------------------------------------------------------
# Population.
# ---------------------------------------------------------------------------------------

#: Ethnic group shares by authority (rounded) [CENSUS-ETH]. Order: white, asian, black, mixed, other.
ETHNICITY_BY_LA: dict[str, tuple[float, float, float, float, float]] = {
    "E08000025": (0.486, 0.310, 0.110, 0.048, 0.046),  # Birmingham
    "E08000026": (0.654, 0.186, 0.089, 0.036, 0.035),  # Coventry
    "E08000027": (0.861, 0.087, 0.020, 0.025, 0.007),  # Dudley
    "E08000028": (0.578, 0.250, 0.090, 0.043, 0.039),  # Sandwell
    "E08000029": (0.846, 0.091, 0.022, 0.030, 0.011),  # Solihull
    "E08000030": (0.735, 0.187, 0.036, 0.030, 0.012),  # Walsall
    "E08000031": (0.593, 0.213, 0.094, 0.051, 0.049),  # Wolverhampton
}
ETHNIC_GROUPS = ("white", "asian", "black", "mixed", "other")
#: Older cohorts are more often white British than the population as a whole; deaths skew old.
OLDER_WHITE_BOOST = 1.8

# ---------------------------------------------------------------------------------------
# Safeguarding, reviews.
# ---------------------------------------------------------------------------------------

#: Share of the deceased in police reports known to local authority services, by category.
#: People who die by suicide or drug poisoning are often in contact with services beforehand
#: (NCISH annual report 2023: ~27% in contact with mental health services in the prior year;
#: ONS-DRUG: most drug misuse deaths are among people known to treatment services).
KNOWN_TO_SERVICES: dict[str, float] = {
    "homicide": 0.45,
    "suicide": 0.45,
    "drug": 0.70,
    "road_traffic": 0.06,
    "accident": 0.20,
    "natural": 0.15,
}
#: Living people in at-risk cohorts whose contacts are returned, per force-year.
AT_RISK_COHORT_PER_FORCE_YEAR = 2_500

#: Published learning reviews per force-year by type, with recommendations per review.
#: DARDRs follow every domestic homicide (~11 a year); OWHRs were piloted in the West Midlands
#: from April 2024; PFD reports ~25 a year in the force area [MOJ-COR pro rata].
REVIEWS_PER_FORCE_YEAR: dict[str, tuple[float, tuple[int, int]]] = {
    "dardr": (10, (5, 14)),
    "owhr": (5, (4, 9)),
    "sar": (6, (4, 10)),
    "cspr": (3, (4, 9)),
    "pfd": (25, (1, 4)),
    "iopc": (3, (2, 6)),
    "inspectorate": (2, (5, 12)),
    "mir_debrief": (10, (2, 6)),
}

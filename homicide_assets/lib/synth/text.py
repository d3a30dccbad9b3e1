"""Free text: police narratives, medical certificate wording, ED location notes, review recommendations.

Templates are filled column-wise with polars (:func:`fill_templates`), so narratives for tens
of thousands of reports cost one expression per template. Narratives deliberately contain
commas, double quotes and line breaks (the contract's RFC 4180 quoting has to carry them).
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

STREETS = (
    "High Street",
    "Church Road",
    "Station Road",
    "Park Lane",
    "Soho Road",
    "Stratford Road",
    "Broad Street",
    "Alum Rock Road",
    "Coventry Road",
    "Dudley Road",
    "Hagley Road",
    "Bristol Road",
    "Lichfield Road",
    "Walsall Road",
    "Stoney Lane",
    "Ladypool Road",
    "Foleshill Road",
    "Far Gosford Street",
    "Lichfield Street",
    "Park Street",
    "Queen Street",
    "Wolverhampton Street",
    "Bearwood Road",
    "Slade Road",
    "Washwood Heath Road",
)
PARKS = (
    "the park",
    "the canal towpath",
    "the recreation ground",
    "the churchyard",
    "woodland off the main road",
    "the playing fields",
    "the nature reserve",
)
VENUES = (
    "the chip shop",
    "the off licence",
    "a nightclub",
    "the kebab shop",
    "a pub",
    "the bus station",
    "the Co-op",
    "a snooker hall",
    "the takeaway",
)

PLACE_PHRASES: dict[str, tuple[str, ...]] = {
    "dwelling": (
        "at the home address",
        "in the bedroom at the home address",
        "in the living room of the flat",
        "at a friend's address",
    ),
    "street": ("in the street on {street}", "on the pavement on {street}", "near the junction of {street}"),
    "public_open_space": ("in {park}", "on a bench in {park}"),
    "licensed_premises": ("outside {venue} on {street}", "in the toilets of {venue}"),
    "retail": ("in the car park of {venue}", "inside {venue} on {street}"),
    "hospital": ("on the ward", "at hospital"),
    "care_home": ("at the care home", "in their room at the residential home"),
    "custody": ("in a cell at the custody suite",),
    "transport": (
        "on the railway line near the station",
        "at the bus station",
        "on the tracks near the footbridge",
    ),
    "waterway": ("in the canal near {street}", "in the river off {street}"),
    "other": ("in a hostel room", "at a derelict building off {street}", "in a garage"),
}

NARRATIVES: dict[str, tuple[str, ...]] = {
    "natural": (
        "Call from {caller} at {time} reporting that the deceased, a {age} year old {sex_word}, had been found "
        "unresponsive {place}. Ambulance attended and life was pronounced extinct. No suspicious circumstances, "
        "GP to be contacted re: medical history.",
        'PC {collar} attended. {caller_cap} said "{quote}". Deceased found {place}, no signs of forced entry, '
        "no injuries noted.\nSudden death report submitted to the coroner's office.",
        "Concern for welfare call, no answer at the address for several days. Entry forced by officers; deceased "
        "found {place}. Nothing suspicious. Next of kin informed, body removed by undertakers on behalf of HM Coroner.",
    ),
    "unexplained": (
        "Unexplained death: {age} year old {sex_word} found {place} by {caller}. Cause not apparent, no obvious "
        "injuries. Post mortem requested; treat as unexplained pending results.",
        'Deceased located {place} at {time}. Scene held while DS reviewed, "nothing obviously suspicious" but '
        "circumstances unclear.\nAwaiting PM and toxicology.",
    ),
    "suspected_suicide": (
        "Deceased found {place} by {caller}. Note left at the scene. Family state {pronoun} had been struggling, "
        "known to mental health services.\nNo third party involvement suspected at this stage.",
        "{age} year old {sex_word} located {place} at {time}. Believed to have taken own life, no suspicious "
        'circumstances. Family informed, "{quote}".',
    ),
    "drug_related": (
        "Found {place} by {caller}, drug paraphernalia nearby ({paraphernalia}). Believed overdose, toxicology "
        "requested. No signs of a struggle.",
        '{caller_cap} called at {time}: {pronoun} "wasn\'t breathing". Paramedics administered naloxone without '
        "success. Deceased, {age}, known user.\nItems seized for analysis.",
    ),
    "homicide": (
        "Report of a {age} year old {sex_word} with {injury} {place} at {time}. Scene preserved, Major "
        "Investigation Unit notified.\nWitnesses describe a group running from the scene, enquiries ongoing.",
        'Call from {caller}: "{quote}". Officers attended {place}, CPR commenced, {sex_word} pronounced dead '
        "at scene. Suspect(s) outstanding, house-to-house, CCTV and forensic strategy in place.",
    ),
    "suspected_homicide": (
        "{age} year old {sex_word} found {place} with {injury}. Treated as suspicious from the outset, scene "
        "guard in place, Home Office pathologist requested.",
    ),
    "suspicious": (
        "Deceased found {place} by {caller}; injuries inconsistent with the account given. Treated as "
        'suspicious pending post mortem. {caller_cap} spoken to, "{quote}".',
    ),
    "road_traffic": (
        "Fatal collision on {street} at {time}. {age} year old {sex_word} pronounced dead at scene. Collision "
        "investigation unit attended, road closed for 6 hours.",
        "Pedestrian struck by a vehicle on {street}; driver stopped at the scene and was breathalysed, "
        "negative. Witnesses spoken to.\nFamily liaison officer deployed.",
    ),
    "accidental": (
        "Deceased found at the foot of the stairs {place} by {caller}. Believed fall, no suspicious circumstances.",
        "{age} year old {sex_word} found {place}. Appears accidental; {caller} last saw {pronoun_obj} the previous "
        'evening, "{quote}".',
    ),
    "other": (
        "Death reported by {caller} at {time}, {place}. Circumstances recorded for the coroner; no further police "
        "action anticipated.",
    ),
}
NARRATIVE_VALUES = {
    "caller": (
        "her son",
        "his daughter",
        "a neighbour",
        "a member of the public",
        "carer",
        "the landlord",
        "a friend",
        "ambulance service",
        "hostel staff",
        "his partner",
        "her husband",
    ),
    "quote": (
        "I just knew something was wrong",
        "he hadn't answered his phone since Friday",
        "she said she was fine",
        "I found him like that, I didn't touch anything",
        "we'd been drinking, that's all",
        "he was in a bad way last week, I told the GP",
    ),
    "injury": (
        "a stab wound to the chest",
        "head injuries",
        "multiple stab wounds",
        "a gunshot wound",
        "injuries consistent with an assault",
    ),
    "paraphernalia": (
        "foil, a spoon and a syringe",
        "a crack pipe",
        "empty blister packs",
        "a bottle of clear liquid",
        "white powder, rolled note",
    ),
}


def fill_templates(frame: pl.DataFrame, templates: list[str], choice: np.ndarray) -> pl.Series:
    """Fill ``{name}`` placeholders of ``templates[choice[i]]`` from ``frame``'s columns, row by row (vectorised)."""
    template_idx = pl.Series("_t", choice)
    expr: pl.Expr | None = None
    for k, template in enumerate(templates):
        parts = re.split(r"\{(\w+)\}", template)
        pieces = [
            pl.lit(p) if i % 2 == 0 else pl.col(p).cast(pl.String).fill_null("")
            for i, p in enumerate(parts)
            if i % 2 == 1 or p
        ]
        filled = pl.concat_str(pieces)
        expr = (
            pl.when(pl.col("_t") == k).then(filled)
            if expr is None
            else expr.when(pl.col("_t") == k).then(filled)
        )
    return (
        frame.with_columns(template_idx)
        .select(expr.otherwise(pl.lit(None, pl.String)).alias("text"))
        .to_series()
    )


def pick(rng: np.random.Generator, values: tuple[str, ...], n: int) -> list[str]:
    return [values[i] for i in rng.integers(0, len(values), n)]


def place_phrases(rng: np.random.Generator, location_type: pl.Series) -> pl.Series:
    """A free-text place for each location type, naming a street, park or venue."""
    n = len(location_type)
    flat = [(lt, t) for lt, ts in PLACE_PHRASES.items() for t in ts]
    templates = [t for _, t in flat]
    options = {lt: [i for i, (k, _) in enumerate(flat) if k == lt] for lt in PLACE_PHRASES}
    loc = location_type.fill_null("other").to_list()
    u = rng.random(n)
    choice = np.array(
        [
            options.get(lt, options["other"])[int(x * len(options.get(lt, options["other"])))]
            for lt, x in zip(loc, u)
        ]
    )
    frame = pl.DataFrame(
        {"street": pick(rng, STREETS, n), "park": pick(rng, PARKS, n), "venue": pick(rng, VENUES, n)}
    )
    return fill_templates(frame, templates, choice)


def police_narratives(rng: np.random.Generator, reports: pl.DataFrame) -> pl.Series:
    """Narratives for death reports; ``reports`` needs classification, location_type, age, sex, reported_at and a collar."""
    n = reports.height
    cls = reports["classification"].to_list()
    flat = [(c, t) for c, ts in NARRATIVES.items() for t in ts]
    options = {c: [i for i, (k, _) in enumerate(flat) if k == c] for c in NARRATIVES}
    u = rng.random(n)
    choice = np.array(
        [
            options.get(c, options["other"])[int(x * len(options.get(c, options["other"])))]
            for c, x in zip(cls, u)
        ]
    )
    male = reports["sex"].to_numpy() == "m"
    caller = pick(rng, NARRATIVE_VALUES["caller"], n)
    frame = pl.DataFrame(
        {
            "caller": caller,
            "caller_cap": [c[:1].upper() + c[1:] for c in caller],
            "quote": pick(rng, NARRATIVE_VALUES["quote"], n),
            "injury": pick(rng, NARRATIVE_VALUES["injury"], n),
            "paraphernalia": pick(rng, NARRATIVE_VALUES["paraphernalia"], n),
            "street": pick(rng, STREETS, n),
            "place": place_phrases(rng, reports["location_type"]),
            "time": reports["reported_at"].dt.strftime("%H:%M"),
            "age": reports["age"].cast(pl.String),
            "sex_word": np.where(male, "male", "female"),
            "pronoun": np.where(male, "he", "she"),
            "pronoun_obj": np.where(male, "him", "her"),
            "collar": reports["officer_in_case"].fill_null("unknown"),
        }
    )
    return fill_templates(frame, [t for _, t in flat], choice).str.slice(0, 4000)


#: Medical certificate wording by apparent category: (cause 1a, 1b, 2, ICD-10 underlying, weight).
#: Natural causes follow the leading causes of death [ONS-DEATHS, leading causes 2022]:
#: dementia, ischaemic heart disease, COVID-19, lung cancer, COPD, stroke.
CAUSES: dict[str, tuple[tuple[str, str, str, str, float], ...]] = {
    "natural": (
        ("Dementia", "", "", "F03", 11),
        ("Ischaemic heart disease", "Coronary artery atherosclerosis", "Hypertension", "I25.1", 10),
        ("Acute myocardial infarction", "Coronary artery disease", "Type 2 diabetes mellitus", "I21.9", 5),
        ("Carcinoma of the lung", "", "Chronic obstructive pulmonary disease", "C34.9", 5),
        ("Chronic obstructive pulmonary disease", "", "Ischaemic heart disease", "J44.9", 5),
        ("Cerebrovascular accident", "Atrial fibrillation", "", "I64", 5),
        ("Bronchopneumonia", "Frailty of old age", "", "J18.0", 5),
        ("Frailty of old age", "", "", "R54", 4),
        ("Congestive cardiac failure", "Ischaemic heart disease", "", "I50.0", 4),
        ("Sepsis", "Urinary tract infection", "Dementia", "A41.9", 3),
        ("Carcinoma of the colon", "", "", "C18.9", 2),
        ("COVID-19 pneumonia", "", "Chronic kidney disease", "U07.1", 1.5),
        ("End stage renal failure", "Diabetic nephropathy", "", "N18.5", 1.5),
        ("Alcoholic liver disease", "", "", "K70.3", 1.5),
        # sudden or ill-defined certificates: a small share of genuine natural deaths
        ("Old age", "", "", "R54", 1.0),
        ("Sudden cardiac death", "", "Ischaemic heart disease", "I46.1", 0.5),
    ),
    "drug": (
        ("Mixed drug toxicity", "", "", "X42", 5),
        ("Heroin toxicity", "", "", "X42", 3),
        ("Cocaine toxicity", "", "Ischaemic heart disease", "X42", 1),
    ),
    "suicide": (
        ("Hanging", "", "", "X70", 6),
        ("Multiple injuries", "Fall from height", "", "X80", 1),
        ("Drug toxicity", "", "Depression", "X61", 2),
    ),
    "accident": (
        ("Traumatic subdural haematoma", "Fall", "", "W19", 5),
        ("Fractured neck of femur", "Fall", "Osteoporosis", "W19", 4),
        ("Smoke inhalation", "", "", "X00", 1),
    ),
    "homicide": (("Stab wound to the chest", "", "", "X99", 4), ("Head injury", "Assault", "", "Y09", 3)),
    "road_traffic": (("Multiple injuries", "Road traffic collision", "", "V89.2", 1),),
}

#: Wording a certifier who causes deaths uses for residents who were not expected to die
#: (the Shipman Inquiry's pattern: "old age" or a sudden cardiac event, no disease leading to
#: it): the same small set as genuine sudden or ill-defined natural deaths in ``CAUSES``.
SUDDEN_CAUSES: tuple[tuple[str, str, str, str], ...] = (
    ("Old age", "", "", "R54"),
    ("Frailty of old age", "", "", "R54"),
    ("Sudden cardiac death", "", "Ischaemic heart disease", "I46.1"),
    ("Cardiac arrest", "", "", "I46.9"),
)

#: Themes a recommendation classifier should find, with phrasings (``{org}``, ``{board}`` filled in).
RECOMMENDATION_THEMES: dict[str, tuple[str, ...]] = {
    "information_sharing": (
        "{org} should ensure that information about risk is shared with partner agencies at the point of referral, "
        "not after the fact.",
        "The board should seek assurance that GP records, police intelligence and council case notes can be "
        "shared without delay when there are concerns about a person's safety.",
    ),
    "risk_assessment": (
        "{org} should review how the DASH risk assessment is completed, so that risk is re-assessed when "
        "circumstances change.",
        "Practitioners must record a risk assessment, and its rationale, whenever a person discloses threats "
        "to life.",
    ),
    "safeguarding_referral": (
        "{org} should audit safeguarding referrals made in the last year to confirm that each was acknowledged "
        "and acted on within 24 hours.",
        "Staff should be reminded that an adult safeguarding referral must be made when self-neglect is "
        "suspected, even if the person declines support.",
    ),
    "training": (
        "{org} should deliver refresher training on coercive and controlling behaviour to all frontline staff.",
        "Training on recognising the signs of criminal exploitation should be mandatory for school and youth "
        "service staff.",
    ),
    "supervision": (
        "{org} should ensure that practitioners holding complex cases receive monthly supervision that is "
        "recorded and reviewed.",
        "Managers should review caseloads so that supervision is not cancelled at times of high demand.",
    ),
    "substance_misuse": (
        "{org} should ensure that people leaving prison with a history of opiate use are offered naloxone and "
        "a same-day treatment appointment.",
        "Drug and alcohol services should follow up missed appointments within 48 hours for people at risk of "
        "overdose.",
    ),
    "mental_health": (
        "{org} should make sure that people discharged from mental health services have a named contact and "
        "a crisis plan.",
        "The trust should review how it responds when a patient who has self-harmed does not attend follow-up.",
    ),
    "weapons": (
        "{org} should work with retailers to enforce age checks on the sale of knives.",
        "Schools and youth services should be supported to deliver knife crime prevention sessions in the "
        "areas most affected.",
    ),
    "domestic_abuse": (
        "{org} should ensure that routine enquiry about domestic abuse takes place in maternity, emergency and "
        "primary care settings.",
        "The MARAC should review cases where the same perpetrator is linked to more than one victim.",
    ),
    "multi_agency_working": (
        "{board} should establish a multi-agency panel to review deaths where several agencies were involved "
        "in the year before death.",
        "Partners should agree a lead agency and a single plan when a person is known to more than two services.",
    ),
}
RECOMMENDATION_EVIDENCE = (
    "Audit report presented to the board",
    "Training records: 92% of staff completed",
    "Revised policy published",
    "Data sharing agreement signed",
    "Dip sample of 40 cases",
    "Minutes of the partnership meeting",
)
ED_LOCATION_TEXT = (
    "outside {venue}, {street}",
    "at home",
    "in the car park of {venue}",
    "on the bus",
    "{venue}, {street}",
    "in the street, {street}",
    "at a party",
    "in town",
    "at work",
    "near {venue}",
)


def ed_location_texts(rng: np.random.Generator, n: int) -> pl.Series:
    frame = pl.DataFrame({"street": pick(rng, STREETS, n), "venue": pick(rng, VENUES, n)})
    return fill_templates(frame, list(ED_LOCATION_TEXT), rng.integers(0, len(ED_LOCATION_TEXT), n))

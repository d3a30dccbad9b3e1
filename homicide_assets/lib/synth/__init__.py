"""A synthetic West Midlands: every partner feed, the ground truth it hides, planted linked series.

Pure logic (no Dagster). Public API:

- :func:`generate` (``scale``, ``seed``, ``out``, ``faults``, ``**noise_params``) writes
  ``out/landing/<partner_id>/<partner_id>__<feed>__<YYYYMMDD>[__<seq>].<ext>`` per
  ``shared/design/partner-feeds.md`` and ``out/ground_truth/`` (persons, deaths,
  source_records, series, negative_controls, ... and ``summary.json``), and returns a
  :class:`SynthSummary` (counts, seconds, peak RSS).
- :data:`SCALES`, :class:`Scale`, :class:`NoiseParams`, :class:`ComplianceScenario`.
- :func:`homicide_assets.lib.synth.bench.measure_scale` runs one scale in a fresh process and
  returns its sizes, seconds and peak memory (for ``make bench``).
- :data:`homicide_assets.lib.synth.faults.FAULT_CATALOGUE`: malformed deliveries for quality tests.

Command line: ``python -m homicide_assets.synth --scale tiny --seed 3 --out DIR [--faults]``.
"""

from homicide_assets.lib.synth.config import PERIOD_END, SCALES, ComplianceScenario, NoiseParams, Scale
from homicide_assets.lib.synth.generate import SynthSummary, generate
from homicide_assets.lib.synth.series import SERIES_KINDS

__all__ = [
    "PERIOD_END",
    "SCALES",
    "SERIES_KINDS",
    "ComplianceScenario",
    "NoiseParams",
    "Scale",
    "SynthSummary",
    "generate",
]

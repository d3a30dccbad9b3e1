"""Screenshots of both report editions for ``docs/`` (docs/report_full.png, docs/report_partner.png).

Usage::

    python scripts/report_screenshots.py --data DATA_DIR [--out docs] [--max-height 3400]
    python scripts/report_screenshots.py --build [--out docs]   # the committed tiny sample, built first

``--data`` is a data directory where ``homicide-assets build`` has run; the report is
rendered from its warehouse into a temporary folder and opened in headless Chromium
(``lib/report_browser.py``), which must see no console error and no network request.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path

from homicide_assets.lib.settings import REPO_ROOT, DataDir


def build_sample(root: Path) -> DataDir:
    from homicide_assets.cli import run_build

    data_dir = DataDir(root / "data").ensure()
    shutil.copytree(
        REPO_ROOT / "seeds" / "sample_deliveries" / "landing", data_dir.landing, dirs_exist_ok=True
    )
    os.environ["HOMICIDE_DATA_DIR"] = str(data_dir.root)
    os.environ.setdefault("HOMICIDE_PSEUDONYM_KEY", "screenshot-key-0123456789abcdef")
    os.environ["DAGSTER_HOME"] = str(data_dir.root / "dagster_home")
    run_build(quiet=True)
    return data_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="a built data directory")
    parser.add_argument("--build", action="store_true", help="build the committed tiny sample first")
    parser.add_argument("--out", default=str(REPO_ROOT / "docs"))
    parser.add_argument("--max-height", type=int, default=3400)
    parser.add_argument("--run-date", default=None)
    args = parser.parse_args(argv)
    from homicide_assets.lib.report import build_report, inputs_from_data_dir
    from homicide_assets.lib.report_browser import Chromium

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = build_sample(Path(tmp)) if args.build else DataDir(Path(args.data).resolve())
        run_date = date.fromisoformat(args.run_date) if args.run_date else None
        result = build_report(inputs_from_data_dir(data_dir, run_date), Path(tmp) / "reports")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        report = {}
        with Chromium() as browser:
            for edition, name in (("full", "report_full.png"), ("partner", "report_partner.png")):
                visit = browser.visit(
                    result.editions[edition].html_path,
                    screenshots={"page": {"full": True, "max_height": args.max_height}},
                )
                if visit.errors or visit.network_requests:
                    print(
                        json.dumps(
                            {"edition": edition, "errors": visit.errors, "requests": visit.network_requests}
                        )
                    )
                    return 1
                (out / name).write_bytes(visit.screenshots["page"])
                report[edition] = str(out / name)
        print(json.dumps({"screenshots": report, "errors": 0, "network_requests": 0}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

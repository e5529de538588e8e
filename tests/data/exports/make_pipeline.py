"""Write ``pipeline/deals.csv``: a flat pipeline export as a CRM's "export to CSV" gives it (issue 25).

Eight owners by name, US dates (``4/20/2024``), the outcome spread over two columns (``Status``, and for
``Status`` = Opportunity a ``Stage``), lost deals with a blank ``Actual close date`` but an ``Expected close
date``, amounts as ``$12,500``, no activities. A few created dates are ISO 8601 (exports mix them). Run it from
anywhere: ``python tests/data/exports/make_pipeline.py`` (fixed seed: the same file every time).
"""

import csv
import random
from datetime import date, timedelta
from pathlib import Path

OWNERS = ["Ana Lima", "Ben Okafor", "Chloe Martin", "Dev Patel", "Eva Novak", "Farid Haddad", "Grace Kim",
          "Hugo Silva"]
STATUSES = ["Customer", "Churned Customer", "Disqualified", "New", "Qualified", "Opportunity"]
STAGES = ["Won", "Lost", "Initial contact", "Proposal sent", "Negotiation"]


def us(day: date) -> str:
    return f"{day.month}/{day.day}/{day.year}"


def main() -> None:
    rng = random.Random(25)
    rows = []
    for i in range(160):
        created = date(2024, 1, 2) + timedelta(days=rng.randrange(150))
        status = rng.choices(STATUSES, weights=[3, 1, 3, 2, 2, 6])[0]
        stage = rng.choice(STAGES) if status == "Opportunity" else ""
        won = status in ("Customer", "Churned Customer") or stage == "Won"
        lost = status == "Disqualified" or stage == "Lost"
        close = created + timedelta(days=rng.randrange(3, 60))
        expected = "" if (not (won or lost) and rng.random() < 0.3) else us(close)
        rows.append({
            "Deal ID": f"D{1000 + i}",
            "Deal name": f"Deal {i}",
            "Owner": OWNERS[rng.randrange(len(OWNERS))],
            "Created date": created.isoformat() if i % 17 == 5 else us(created),
            "Status": status if i % 13 else status.upper() + " ",          # loose matching: case and blanks
            "Stage": stage,
            "Actual close date": us(close) if won else "",
            "Expected close date": expected,
            "Amount": f"${rng.randrange(20, 400) * 50:,}",
        })
    out = Path(__file__).parent / "pipeline" / "deals.csv"
    out.parent.mkdir(exist_ok=True)
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()

"""Write ``leads/``: a lead-based export (issue 25): leads own the rep, deals and activities point at leads.

``leads.csv`` (lead_id, company, owner_rep_id, account_id, updated_at), ``reps.csv``, ``opportunities.csv``
(opp_id, lead_id, created_at, closed_at, outcome blank on open deals, amount; a lead may have two deals),
``activities.csv`` (activity_id, lead_id, type, date; some on leads without a deal). No row names its rep: the
mapping YAML must look it up. Fixed seed: ``python tests/data/exports/make_leads.py`` writes the same files.
"""

import csv
import random
from datetime import datetime, timedelta
from pathlib import Path

REPS = [("R1", "Ines Duarte", "East"), ("R2", "Jon Berg", "East"), ("R3", "Kemi Ade", "West"),
        ("R4", "Lars Moe", "West"), ("R5", "Mia Chen", "West")]


def write(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    rng = random.Random(2025)
    folder = Path(__file__).parent / "leads"
    folder.mkdir(exist_ok=True)
    start = datetime(2024, 2, 5, 9, 0)
    leads = [{"lead_id": f"L{100 + i}", "company": f"Company {i}", "owner_rep_id": REPS[i % len(REPS)][0],
              "account_id": f"A{i // 2}", "updated_at": (start + timedelta(days=i)).date().isoformat()}
             for i in range(60)]
    opps, acts = [], []
    for lead in leads:
        for _ in range(rng.choice([0, 1, 1, 1, 2])):
            created = start + timedelta(days=rng.randrange(120), hours=rng.randrange(8))
            outcome = rng.choices(["", "Won", "Lost"], weights=[3, 3, 3])[0]
            closed = created + timedelta(days=rng.randrange(5, 50)) if outcome else None
            opps.append({"opp_id": f"O{500 + len(opps)}", "lead_id": lead["lead_id"],
                         "created_at": created.isoformat(sep=" "),
                         "closed_at": closed.date().isoformat() if closed else "",
                         "outcome": outcome, "amount": rng.randrange(10, 300) * 100 if outcome != "Lost" else ""})
        for _ in range(rng.randrange(0, 4)):
            kind = rng.choice(["Call", "Email", "Meeting"])
            when = start + timedelta(days=rng.randrange(150), hours=rng.randrange(9))
            acts.append({"activity_id": f"T{len(acts) + 1}", "lead_id": lead["lead_id"], "type": kind,
                         "date": when.isoformat(sep=" ")})
    write(folder / "reps.csv", [{"rep_id": r, "name": n, "team": t} for r, n, t in REPS])
    write(folder / "leads.csv", leads)
    write(folder / "opportunities.csv", opps)
    write(folder / "activities.csv", acts)


if __name__ == "__main__":
    main()

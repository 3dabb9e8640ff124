# ruff: noqa: E501, S311  (fixture generator: compact row literals; seeded, not secret, randomness)
"""Write examples/portfolio.csv: ~200 fictional cases across both ladders (seeded, so the
output is the same every run). One row per contact point; see docs/tour-service.md.

    python examples/make_portfolio.py            # writes examples/portfolio.csv

Portfolios: `cn-loans` (consumer loans in China, profile cn-consumer), `us-loans`
(consumer loans in the US, us-consumer), `b2b` (receivables, commercial). Due dates spread
from August to mid-December 2026 so every tier appears around 1 December 2026.
US numbers are 555-01xx (reserved for fiction); emails use example.com / example.cn.
"""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

COLUMNS = (
    "portfolio", "external_ref", "amount", "currency", "due_date", "balance", "stage",
    "stage_started_on", "status", "flags", "country", "party_ref", "party_role", "party_name",
    "relation", "knows_of_debt", "refused_contact", "party_timezone", "title", "kind", "value",
    "consent", "opted_out", "validity", "timezone", "do_not_call",
)  # fmt: skip
REFERENCE = date(2026, 12, 1)
SURNAMES = [
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Chen",
    "Yang",
    "Zhao",
    "Huang",
    "Zhou",
    "Wu",
    "Xu",
    "Sun",
    "Ma",
    "Zhu",
    "Hu",
    "Guo",
    "He",
    "Lin",
]
GIVEN = [
    "Wei",
    "Fang",
    "Na",
    "Min",
    "Jing",
    "Lei",
    "Jun",
    "Yan",
    "Tao",
    "Ping",
    "Hui",
    "Xin",
    "Yu",
    "Qiang",
    "Ying",
    "Hao",
]
US_FIRST = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "Michael",
    "Linda",
    "David",
    "Susan",
    "Maria",
    "Kevin",
    "Ana",
    "Luis",
]
US_LAST = [
    "Smith",
    "Johnson",
    "Garcia",
    "Miller",
    "Davis",
    "Martinez",
    "Lopez",
    "Wilson",
    "Moore",
    "Clark",
    "Young",
]
# (area code, state, zone): some rows leave the zone empty so the engine derives it.
US_AREAS = [
    ("212", "NY", "America/New_York"),
    ("312", "IL", "America/Chicago"),
    ("303", "CO", "America/Denver"),
    ("602", "AZ", "America/Phoenix"),
    ("415", "CA", "America/Los_Angeles"),
    ("808", "HI", "Pacific/Honolulu"),
    ("617", "MA", "America/New_York"),
]
CN_RELATIONS = ["colleague", "relative", "friend", "reference"]
US_RELATIONS = ["relative", "reference", "employer"]
COMPANIES = [
    "Huaxin Precision Parts", "Donghai Logistics", "Jinhong Textiles", "Ruida Electronics",
    "Tianyuan Foods", "Hengtai Packaging", "Mingguang Lighting", "Zhongcheng Machinery",
    "Baoli Chemicals", "Xinyue Furniture", "Haoyun Auto Parts", "Kunlun Medical Supplies",
    "Shengshi Printing", "Lianfa Plastics", "Yongkang Hardware", "Guotai Paper",
    "Fuxing Ceramics", "Wanjia Appliances", "Longteng Steel", "Ruifeng Garments",
    "Jiahe Cold Chain", "Anda Instruments", "Huamei Cosmetics", "Taishan Cables",
    "Boya Software", "Xinghe Glass", "Dingsheng Pumps", "Meilin Tea", "Chuangyu Motors",
    "Hongda Building Materials",
]  # fmt: skip


def cn_mobile(rng: random.Random) -> str:
    prefix = rng.choice(["135", "138", "139", "150", "186", "188"])  # all valid mobile blocks
    return f"+86 {prefix} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"


def row(**values: object) -> dict[str, object]:
    return {c: values.get(c, "") for c in COLUMNS}


def cn_cases(rng: random.Random, count: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for i in range(count):
        ref = f"CNL-{2026_0000 + i}"
        due = REFERENCE - timedelta(
            days=rng.choice([-3, -1, 2, 4, 7, 12, 16, 20, 26, 29, 35, 48, 70, 95])
        )
        amount = rng.randrange(2000, 60000, 50)
        paid = rng.random() < 0.2
        case = {
            "portfolio": "cn-loans", "external_ref": ref, "amount": f"{amount}.00", "currency": "CNY",
            "due_date": due.isoformat(), "balance": f"{amount // 2}.00" if paid else "",
            "country": "CN", "flags": "dispute" if i % 37 == 5 else "",
        }  # fmt: skip
        name = rng.choice(SURNAMES) + " " + rng.choice(GIVEN)
        zone = "" if i % 5 == 0 else "Asia/Shanghai"  # some zones unknown: derived from +86
        rows.append(row(**case, party_ref="debtor", party_role="debtor", party_name=name,
                        party_timezone=zone, kind="phone", value=cn_mobile(rng),
                        validity="verified"))  # fmt: skip
        if i % 3 == 0:
            rows.append(row(**case, party_ref="debtor", party_role="debtor", party_name=name,
                            party_timezone=zone, kind="phone", value=cn_mobile(rng),
                            opted_out="sms" if i % 9 == 0 else ""))  # fmt: skip
        for k in range(rng.choice([1, 1, 2])):
            rows.append(row(**case, party_ref=f"contact-{k + 1}", party_role="third_party",
                            party_name=rng.choice(SURNAMES) + " " + rng.choice(GIVEN),
                            relation=rng.choice(CN_RELATIONS),
                            knows_of_debt="true" if (i + k) % 4 == 0 else "",
                            refused_contact="true" if i == 7 and k == 0 else "",
                            kind="phone", value=cn_mobile(rng)))  # fmt: skip
    return rows


def us_cases(rng: random.Random, count: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    used: set[str] = set()

    def number(area: str) -> str:
        while True:
            n = f"({area}) 555-01{rng.randint(0, 99):02d}"
            if n not in used:
                used.add(n)
                return n

    for i in range(count):
        ref = f"USL-{50000 + i}"
        due = REFERENCE - timedelta(days=rng.choice([3, 5, 9, 14, 19, 25, 33, 45, 61, 90]))
        amount = rng.randrange(300, 8000, 25)
        area, _state, zone = US_AREAS[i % len(US_AREAS)]
        case = {
            "portfolio": "us-loans", "external_ref": ref, "amount": f"{amount}.00",
            "currency": "USD", "due_date": due.isoformat(), "country": "US",
            "flags": "attorney" if i % 29 == 3 else "",
        }  # fmt: skip
        name = rng.choice(US_FIRST) + " " + rng.choice(US_LAST)
        rows.append(row(**case, party_ref="debtor", party_role="debtor", party_name=name,
                        party_timezone="" if i % 3 == 0 else zone, kind="phone",
                        value=number(area), consent="voice;sms" if i % 4 else "voice"))  # fmt: skip
        email = name.lower().replace(" ", ".") + f"{i}@example.com"
        rows.append(row(**case, party_ref="debtor", party_role="debtor", party_name=name,
                        kind="email", value=email, opted_out="email" if i % 11 == 0 else ""))  # fmt: skip
        if i % 2 == 0:
            rows.append(row(**case, party_ref="ref-1", party_role="third_party",
                            party_name=rng.choice(US_FIRST) + " " + rng.choice(US_LAST),
                            relation=rng.choice(US_RELATIONS), kind="phone",
                            value=number(US_AREAS[(i + 2) % len(US_AREAS)][0])))  # fmt: skip
    return rows


def b2b_cases(rng: random.Random) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    titles = [("Finance Manager", "Ms."), ("Accounts Payable Lead", "Mr."), ("CFO", "Ms.")]
    for i, company in enumerate(COMPANIES):
        for n in range(2):
            ref = f"AR-2026-{i * 2 + n + 101}"
            billing = n == 0 and i % 3 == 0
            stage = "bill_confirmation" if billing else "payment"
            due = REFERENCE - timedelta(days=rng.choice([-7, -2, 1, 4, 9, 15, 24, 38, 66, 100]))
            started = REFERENCE - timedelta(days=rng.choice([2, 6, 10, 15, 21]))
            amount = rng.randrange(20000, 900000, 100)
            case = {
                "portfolio": "b2b", "external_ref": ref, "amount": f"{amount}.00",
                "currency": "CNY", "due_date": due.isoformat(), "stage": stage,
                "stage_started_on": started.isoformat(), "country": "CN",
            }  # fmt: skip
            rows.append(row(**case, party_ref="customer", party_role="debtor", party_name=company,
                            party_timezone="Asia/Shanghai", kind="phone",
                            value=f"+86 21 {5550 + i:04d} {1000 + n:04d}", validity="verified"))  # fmt: skip
            title, salutation = titles[(i + n) % len(titles)]
            slug = company.lower().split()[0]
            rows.append(row(**case, party_ref="finance", party_role="third_party",
                            party_name=f"{salutation} {rng.choice(SURNAMES)}", title=title,
                            relation="finance contact", knows_of_debt="true",
                            party_timezone="Asia/Shanghai", kind="email",
                            value=f"finance@{slug}.example.cn"))  # fmt: skip
            rows.append(row(**case, party_ref="finance", party_role="third_party",
                            party_name=rows[-1]["party_name"], title=title,
                            relation="finance contact", knows_of_debt="true",
                            party_timezone="Asia/Shanghai", kind="phone", value=cn_mobile(rng)))  # fmt: skip
    return rows


def main() -> None:
    rng = random.Random(20261201)
    rows = cn_cases(rng, 90) + us_cases(rng, 50) + b2b_cases(rng)
    out = Path(__file__).with_name("portfolio.csv")
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out} ({len(rows)} rows)")


if __name__ == "__main__":
    main()

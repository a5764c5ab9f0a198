"""The files in samples/, made from the demo deployment the way a bank and a tax bureau make
theirs, with a few deliberate differences, so that the README's reconciliation and import
commands have something real to find after `bash scripts/run.sh`:

    .venv/bin/python -m scripts.demo_samples [--period 2025-03] [--out samples]

- levy-<period>.csv: the tax bureau's 工会经费代收明细 of the root (county) union's tax-collected
  levies, GBK with a title line, 纳税人识别号 / 所属期 / 计费依据 / 实缴金额 / 入库日期.
  One employer paid 100.00 more than the ledger has, one levy is left out, one employer
  the ledger does not know is added, and one row has a broken credit code.
- bank-<period>.xlsx: the root union's account statement, title and account rows above the
  table, 借方发生额 / 贷方发生额 / 余额 / 对方户名 / 对方账号. Every movement of 102 in the month,
  one booked two days late by the bank, plus a bank fee the ledger has not recorded.
- roster.csv: five people for the first base union of the demo, GBK as Excel on a Chinese
  Windows machine saves it.

The demo is deterministic for its size, scale and seed (scripts/demo_data.py): the samples
committed are made from `ledger demo --size county --scale 0.25` (run.sh's default).
"""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from openpyxl import Workbook

from domain.money import Money
from domain.period import Month
from projections.read_models.models import ReadModels
from projections.reconciliation.reconcile import bank_balance_fen, ledger_bank, ledger_levies
from scripts import synthetic
from scripts.common import CommandFailed, ledger_session
from scripts.demo_summary import deployment_root

DEFAULT_PERIOD = "2025-03"
UNKNOWN_EMPLOYER = synthetic.employer_code("330106", 99_999_989)
BANK_FEE_FEN = 1_500
EXTRA_PAID_FEN = 10_000


def _yuan(fen: int) -> str:
    return str(Money(fen))


def levy_csv(read_models: ReadModels, root: str, month: Month) -> bytes:
    entries = sorted(
        ledger_levies(read_models, month, root), key=lambda e: e.shown["employer_code"]
    )
    if len(entries) < 3:
        raise CommandFailed(f"{root} received fewer than 3 tax-collected levies in {month}")
    rows = [
        ["国家税务总局杭州市西湖区税务局 工会经费代收入库明细"],
        ["纳税人识别号", "纳税人名称", "所属期", "计费依据", "实缴金额", "入库日期"],
    ]
    for i, entry in enumerate(entries):
        if i == 1:
            continue  # left out: the ledger has it, the bureau's file does not
        amount = entry.amount_fen + (EXTRA_PAID_FEN if i == 0 else 0)
        rows.append(
            [
                entry.shown["employer_code"],
                "",
                f"{month.year}年{month.month:02d}月",
                _yuan(entry.amount_fen * 50),
                _yuan(amount),
                entry.shown["received_on"],
            ]
        )
    day = month.first_day.replace(day=15).isoformat()
    rows.append(
        [UNKNOWN_EMPLOYER, "", f"{month.year}年{month.month:02d}月", "50000.00", "1000.00", day]
    )
    broken = entries[-1].shown["employer_code"][:-1] + "0"
    if broken == entries[-1].shown["employer_code"]:
        broken = broken[:-1] + "1"
    rows.append([broken, "", f"{month.year}年{month.month:02d}月", "1000.00", "20.00", day])
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("gbk")


def bank_xlsx(read_models: ReadModels, root: str, name: str, month: Month) -> bytes:
    entries = ledger_bank(read_models, root, month)
    previous = Month.of(month.first_day - datetime.timedelta(days=1))
    balance = bank_balance_fen(read_models, root, previous)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "账户明细"
    sheet.append(["中国工商银行 单位账户交易明细"])
    sheet.append([f"账号：1202 0212 0900 0012 345    户名：{name}"])
    sheet.append([f"起止日期：{month.first_day} 至 {month.last_day}", "", "币种：人民币"])
    sheet.append(["交易日期", "摘要", "借方发生额", "贷方发生额", "余额", "对方户名", "对方账号"])
    lines = []
    for i, entry in enumerate(entries):
        day = entry.day
        if i == 2 and day is not None and (day + datetime.timedelta(days=2)) <= month.last_day:
            day = day + datetime.timedelta(days=2)  # the bank's value date, two days later
        lines.append((day, entry.amount_fen, entry.shown["description"] or ""))
    lines.append((month.last_day, -BANK_FEE_FEN, "账户管理费"))
    lines.sort(key=lambda line: line[0] or month.first_day)
    for day, fen, text in lines:
        balance += fen
        sheet.append(
            [
                day,
                text[:40],
                Decimal(str(Money(-fen))) if fen < 0 else None,
                Decimal(str(Money(fen))) if fen > 0 else None,
                Decimal(str(Money(balance))),
                "",
                "",
            ]
        )
        sheet.cell(sheet.max_row, 1).number_format = "yyyy-mm-dd"
    sheet.append(["合计", "", None, None, None, "", ""])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def roster_csv() -> bytes:
    rows = [["身份证号", "姓名", "入会日期", "手机号", "农民工", "新就业形态"]]
    names = ["陈晓明", "林芳", "黄志强", "周婷", "吴建国"]
    for i, name in enumerate(names):
        number = synthetic.id_number("330106", datetime.date(1961, 3, 1 + i), 900 + i)
        rows.append([number, name, "2025-12-01", f"1390571{i:04d}", "否", "是"])
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("gbk")


def main(
    period: Annotated[str, typer.Option(help="The month, YYYY-MM.")] = DEFAULT_PERIOD,
    out: Annotated[Path, typer.Option(help="Where to write the files.")] = Path("samples"),
) -> None:
    """Writes the sample files from the demo deployment in the configured store."""
    month = Month.parse(period)
    with ledger_session() as ledger:
        root = deployment_root(ledger)
        if root is None:
            raise CommandFailed("the store holds no deployment: run `ledger demo` first")
        read_models = ReadModels(ledger)
        try:
            read_models.catch_up()
            name = read_models.organization(root)["name"]
            levy = levy_csv(read_models, root, month)
            bank = bank_xlsx(read_models, root, name, month)
        finally:
            read_models.close()
    out.mkdir(parents=True, exist_ok=True)
    (out / f"levy-{month}.csv").write_bytes(levy)
    (out / f"bank-{month}.xlsx").write_bytes(bank)
    (out / "roster.csv").write_bytes(roster_csv())
    print(f"samples for {root} {month} written to {out}")


if __name__ == "__main__":
    typer.run(main)

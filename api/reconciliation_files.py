"""The files month-end reconciliation reads, as banks and tax bureaus hand them out: CSV in
UTF-8 (with or without a BOM) or GB18030/GBK, found out without being told, or XLSX, read
within the limits of api.tabular (the same reader as roster imports).

A bank's export starts with a title and account lines above the table (`中国工商银行账户明细`,
`账号：…`, `起止日期：…`); the heading row is found by its names, within the first
HEADING_SEARCH_ROWS rows. Bank statements carry either 借方发生额 (money out) and 贷方发生额
(money in) or one signed 金额; the tax bureau's levy file carries 统一社会信用代码 or 纳税人识别号,
所属期, 计费依据 or 工资总额, 实缴金额 and 入库日期. English headings (`date`, `amount`,
`reference`; `employer_credit_code`, `period`, `amount`) are read too.

A row that cannot be read becomes a BadRow naming its row number (as a spreadsheet shows it),
and the file reads on. Blank rows and totals rows (合计, 本页合计, 总计) are passed over.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from api.tabular import Table, TableLimits
from domain.errors import InvalidValue
from domain.identity import CreditCode
from domain.money import MAX_FEN
from domain.period import Month
from domain.reconciliation import BadRow, BankLine, FileLines, LevyLine

MAX_ROWS = 100_000
MAX_COLUMNS = 64
MAX_CELL_CHARS = 500
HEADING_SEARCH_ROWS = 30
LIMITS = TableLimits(max_rows=MAX_ROWS)

BANK_HEADINGS = {
    "date": ("交易日期", "记账日期", "交易时间", "日期", "date"),
    "debit": ("借方发生额", "借方金额", "支出金额", "借方", "支出"),
    "credit": ("贷方发生额", "贷方金额", "收入金额", "贷方", "收入"),
    "amount": ("金额", "交易金额", "发生额", "amount"),
    "summary": ("摘要", "用途", "附言", "交易摘要", "reference"),
    "balance": ("余额", "账户余额", "balance"),
    "counterparty_name": ("对方户名", "对方账户名称", "对方单位名称", "对方名称"),
    "counterparty_account": ("对方账号", "对方账户", "对方账号/卡号"),
}
LEVY_HEADINGS = {
    "employer_code": (
        "统一社会信用代码",
        "纳税人识别号",
        "缴费单位统一社会信用代码",
        "社会信用代码",
        "employer_credit_code",
    ),
    "period": ("所属期", "费款所属期", "所属期起", "税款所属期", "period"),
    "payroll": ("计费依据", "工资总额", "计费工资总额", "payroll_total"),
    "amount": ("实缴金额", "实缴（退）金额", "实缴(退)金额", "金额", "amount"),
    "paid_on": ("入库日期", "缴款日期", "paid_on"),
}
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
TOTAL_WORDS = ("合计", "总计", "小计")
_DATE = re.compile(
    r"(\d{4})(?:([-/.])(\d{1,2})\2(\d{1,2})|\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?|(\d{2})(\d{2}))"
    r"(?:[\sT]\d{1,2}:\d{2}(?::\d{2})?)?"
)
_MONTH = re.compile(r"(\d{4})\s*[-/.年]?\s*(\d{1,2})(?!\d)")


class RowFault(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _label(cell: Any) -> str:
    if cell is None:
        return ""
    text = str(cell).strip().lstrip("\ufeff").strip()
    # "交易日期:" and "金额（元）" are the same headings.
    text = re.sub(r"[（(]\s*元\s*[)）]$", "", text).rstrip(":：").strip()
    return text.lower() if text.isascii() else text


def _mapping(cells: list[Any], headings: dict[str, tuple[str, ...]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for i, cell in enumerate(cells):
        label = _label(cell)
        for field, names in headings.items():
            if label in names and field not in found:
                found[field] = i
                break
    return found


def _bank_heading(found: dict[str, int]) -> bool:
    return "date" in found and ("amount" in found or {"debit", "credit"} <= found.keys())


def _levy_heading(found: dict[str, int]) -> bool:
    return {"employer_code", "period", "amount"} <= found.keys()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if len(text) > MAX_CELL_CHARS:
        text = text[:MAX_CELL_CHARS]
    return text


def parse_fen(value: Any, field: str, *, blank_is_zero: bool = False) -> int | None:
    """An amount as exported: "1,234.56", "-15.00", "(15.00)", "¥1234.5", or an XLSX number."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if blank_is_zero:
            return 0
        return None
    if isinstance(value, bool):
        raise RowFault(field, "an amount is a number")
    if isinstance(value, int | float):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    else:
        text = str(value).strip().replace(",", "").replace("，", "").replace("¥", "")
        text = text.replace("￥", "").replace(" ", "")
        negative = text.startswith("(") and text.endswith(")")
        if negative:
            text = text[1:-1]
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise RowFault(field, f"{_text(value)[:40]!r} is not an amount") from None
        if negative:
            number = -number
    if not number.is_finite():
        raise RowFault(field, f"{_text(value)[:40]!r} is not an amount")
    fen = number * 100
    if fen != fen.to_integral_value():
        raise RowFault(field, f"{_text(value)[:40]!r} has more than two decimals")
    if abs(fen) >= MAX_FEN:
        raise RowFault(field, "the amount is too large")
    return int(fen)


def parse_day(value: Any, field: str) -> datetime.date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    text = _text(value)
    match = _DATE.fullmatch(text)
    if match is None:
        raise RowFault(field, f"{text[:40]!r} is not a date")
    month, day = next((match[i], match[i + 1]) for i in (3, 5, 7) if match[i] is not None)
    try:
        return datetime.date(int(match[1]), int(month), int(day))
    except ValueError:
        raise RowFault(field, f"{text[:40]!r} is not a date") from None


def parse_period(value: Any, field: str) -> str:
    """所属期 as written: 2024-01, 202401, 2024年01月, 2024-01-01 or 2024-01-01至2024-01-31."""
    if isinstance(value, datetime.date):
        return str(Month.of(value))
    text = _text(value)
    match = _MONTH.match(text)
    if match is None:
        raise RowFault(field, f"{text[:40]!r} is not a month")
    try:
        return str(Month(int(match[1]), int(match[2])))
    except InvalidValue:
        raise RowFault(field, f"{text[:40]!r} is not a month") from None


def _is_total(cells: list[Any]) -> bool:
    return any(any(w in _text(c) for w in TOTAL_WORDS) for c in cells[:4]) and not any(
        isinstance(c, datetime.date) or (isinstance(c, str) and _DATE.fullmatch(c.strip()))
        for c in cells
    )


def _cell(cells: list[Any], found: dict[str, int], field: str) -> Any:
    at = found.get(field)
    return cells[at] if at is not None and at < len(cells) else None


def _bank_line(number: int, cells: list[Any], found: dict[str, int]) -> BankLine:
    day = parse_day(_cell(cells, found, "date"), "交易日期")
    if day is None:
        raise RowFault("交易日期", "the date is missing")
    if "amount" in found:
        amount = parse_fen(_cell(cells, found, "amount"), "金额")
        if amount is None:
            raise RowFault("金额", "the amount is missing")
    else:
        debit = parse_fen(_cell(cells, found, "debit"), "借方发生额", blank_is_zero=True) or 0
        credit = parse_fen(_cell(cells, found, "credit"), "贷方发生额", blank_is_zero=True) or 0
        if debit and credit:
            raise RowFault("借方发生额", "a line has either 借方发生额 or 贷方发生额, not both")
        amount = credit - debit
    return BankLine(
        row=number,
        day=day,
        amount_fen=amount,
        summary=_text(_cell(cells, found, "summary")),
        balance_fen=parse_fen(_cell(cells, found, "balance"), "余额"),
        counterparty_name=_text(_cell(cells, found, "counterparty_name")),
        counterparty_account=_text(_cell(cells, found, "counterparty_account")),
    )


def _levy_line(number: int, cells: list[Any], found: dict[str, int]) -> LevyLine:
    code_text = _text(_cell(cells, found, "employer_code"))
    try:
        code = CreditCode.parse(code_text).value
    except InvalidValue as exc:
        raise RowFault("统一社会信用代码", exc.reason) from None
    amount = parse_fen(_cell(cells, found, "amount"), "实缴金额")
    if amount is None:
        raise RowFault("实缴金额", "the amount is missing")
    return LevyLine(
        row=number,
        employer_code=code,
        period=parse_period(_cell(cells, found, "period"), "所属期"),
        amount_fen=amount,
        payroll_fen=parse_fen(_cell(cells, found, "payroll"), "计费依据"),
        paid_on=parse_day(_cell(cells, found, "paid_on"), "入库日期"),
    )


def read_file(stream: IO[bytes], kind: str, name: str = "") -> FileLines:
    """Reads a bank statement (kind "bank") or a levy file (kind "levy"). A file with no
    heading row in its first rows is refused whole (InvalidValue); a bad row is not."""
    headings = BANK_HEADINGS if kind == "bank" else LEVY_HEADINGS
    is_heading = _bank_heading if kind == "bank" else _levy_heading
    parse = _bank_line if kind == "bank" else _levy_line
    field = "bank_file" if kind == "bank" else "levy_file"
    if stream.read(len(OLE2_MAGIC)) == OLE2_MAGIC:
        raise InvalidValue(
            field, "an .xls workbook (Excel 97-2003) is not read: save it as .xlsx or CSV"
        )
    stream.seek(0)
    try:
        with Table(stream, LIMITS) as table:
            first = table.header()
            if first is None:
                raise InvalidValue(field, "the file is empty")
            found: dict[str, int] | None = None
            result: FileLines | None = None
            for number, cells in _all_rows(list(first), table):
                if found is None:
                    candidate = _mapping(cells, headings)
                    if is_heading(candidate):
                        found = candidate
                        result = FileLines(
                            kind=kind,
                            name=name,
                            heading_row=number,
                            columns={f: _label(cells[i]) for f, i in found.items()},
                        )
                    elif number >= HEADING_SEARCH_ROWS:
                        break
                    continue
                assert result is not None
                if not any(_text(c) for c in cells) or _is_total(cells):
                    continue
                try:
                    result.lines.append(parse(number, cells, found))
                except RowFault as fault:
                    shown = tuple((f, _text(_cell(cells, found, f))) for f in found)
                    result.bad_rows.append(BadRow(number, fault.field, fault.reason, shown))
    except InvalidValue as exc:
        raise InvalidValue(field, exc.reason) from None
    if result is None:
        names = (
            "交易日期 and 借方发生额/贷方发生额 or 金额"
            if kind == "bank"
            else ("统一社会信用代码 (or 纳税人识别号), 所属期 and 实缴金额")
        )
        raise InvalidValue(
            field, f"no heading row with {names} in the first {HEADING_SEARCH_ROWS} rows"
        )
    return result


def _all_rows(first: list[Any], table: Table) -> Iterator[tuple[int, list[Any]]]:
    """Row 1 (as long as it is), then every other row cut to MAX_COLUMNS cells."""
    yield 1, first[:MAX_COLUMNS]
    yield from table.rows(MAX_COLUMNS)

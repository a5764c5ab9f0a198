"""Shared field types: strict (a JSON number is never an amount), closed (unknown fields are
422), and bounded (every string has a length limit)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _no_lone_surrogates(value: str) -> str:
    # JSON may escape half a UTF-16 pair ("\ud800"); such a string cannot be stored as UTF-8.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the text is not valid Unicode") from None
    return value


def text(max_length: int, **kwargs: Any) -> Any:
    return Annotated[
        str, Field(max_length=max_length, **kwargs), AfterValidator(_no_lone_surrogates)
    ]


CREDIT_CODE_PATTERN = r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$"
CreditCodeText = text(
    18,
    min_length=18,
    pattern=CREDIT_CODE_PATTERN,
    description="统一社会信用代码 (18 characters, check character verified)",
    examples=["81110105MA0000001X"],
)
Day = text(
    10,
    pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    json_schema_extra={"format": "date"},
    description="YYYY-MM-DD",
    examples=["2024-03-01"],
)
MonthText = text(
    7, pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="YYYY-MM", examples=["2024-03"]
)
Amount = text(
    20,
    pattern=r"^(0|[1-9][0-9]{0,13})(\.[0-9]{1,2})?$",
    description="A decimal string in yuan with at most two decimals; a JSON number is refused.",
    examples=["1234.50"],
)
Percent = text(
    8,
    pattern=r"^(0|[1-9][0-9]?|100)(\.[0-9]{1,2})?$",
    description="A percentage as a decimal string",
    examples=["40"],
)
RegionCode = text(
    6, pattern=r"^[0-9]{6}$", description="行政区划代码 (GB/T 2260)", examples=["110105"]
)
IdNumberText = text(
    18,
    min_length=18,
    pattern=r"^[0-9]{17}[0-9Xx]$",
    description="居民身份证号 (18 characters)",
    examples=["110105199003071234"],
)
Mobile = text(11, pattern=r"^1[3-9][0-9]{9}$", description="手机号", examples=["13812345678"])
Name = text(100, min_length=1, description="A name (姓名 or 组织名称)")
ReasonCode = Annotated[
    int,
    Field(
        ge=1,
        le=7,
        strict=True,
        description="会籍变化原因代码 (1-7; it must fit the change: transfer 1, retention "
        "1-4 or 7, withdrawal 5, removal 6)",
        examples=[1],
    ),
]


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Written(BaseModel):
    """Every answer to a write carries the position of the last event it stored."""

    position: int | None = Field(description="global position of the last event written")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None


PROBLEM = {"model": Problem, "content": {"application/problem+json": {}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {**PROBLEM, "description": description}
    for status, description in (
        (400, "Malformed request (bad JSON, missing Idempotency-Key)"),
        (401, "No token, or an unknown one"),
        (403, "Outside the token's role or organisation scope"),
        (404, "Unknown resource"),
        (409, "Valid, but the current state forbids it"),
        (413, "Request body too large"),
        (422, "Invalid field values (with field-level errors)"),
        (503, "Database unreachable"),
    )
}

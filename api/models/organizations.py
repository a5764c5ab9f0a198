"""Organisations (工会组织) at the HTTP boundary."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.models.common import CreditCodeText, Day, Name, RegionCode, RequestModel, Written

Level = Literal["national", "province", "city", "county", "township", "base", "joint_base"]
EmployeeCount = int


class FoundOrganization(RequestModel):
    """建会: a union under an active parent, or (admin, no parent) the deployment's root."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "811101050000000010",
                    "name": "北京市朝阳区星火科技有限公司工会委员会",
                    "level": "base",
                    "parent_code": "89110105000000002A",
                    "region_code": "110105",
                    "founded_on": "2024-03-01",
                    "employer_code": "91110105000000007H",
                    "employee_count": 320,
                }
            ]
        }
    )

    code: CreditCodeText
    name: Name
    level: Level
    parent_code: CreditCodeText | None = None
    region_code: RegionCode
    founded_on: Day
    employer_code: CreditCodeText | None = None
    employee_count: int | None = Field(default=None, ge=0, le=10_000_000)


class ChangeOrganization(RequestModel):
    """更名, 隶属关系变更, 职工人数变更: any of the fields, from a date."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "北京市朝阳区星火科技股份有限公司工会委员会",
                    "employee_count": 350,
                    "effective_on": "2024-06-01",
                }
            ]
        }
    )

    name: Name | None = None
    parent_code: CreditCodeText | None = None
    employee_count: int | None = Field(default=None, ge=0, le=10_000_000)
    effective_on: Day


class DissolveOrganization(RequestModel):
    """撤销: refused while the union has members or active child unions."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"dissolved_on": "2024-12-31"}]})

    dissolved_on: Day


class Organization(BaseModel):
    code: str
    name: str
    level: str
    parent_code: str | None
    region_code: str
    founded_on: str
    employer_code: str | None
    employee_count: int | None
    status: Literal["active", "dissolved"]
    dissolved_on: str | None
    member_count: int


class OrganizationWritten(Organization, Written):
    pass


class OrganizationPage(BaseModel):
    items: list[Organization]
    page: int
    page_size: int
    total: int

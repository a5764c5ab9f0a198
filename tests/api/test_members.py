"""Members through real HTTP: joining, reading (masked and unmasked), every change."""

from __future__ import annotations

import uuid
from typing import Any

from service.tokens import Tokens
from tests.api.conftest import Api
from tests.api.events import actor_of, events_after, positioned_events_after


def test_join_and_read_masked(api: Api) -> None:
    id_number = api.next_person()
    body = {
        "id_number": id_number,
        "name": "李娜",
        "organization_code": api.tree.base_a,
        "joined_on": "2021-03-01",
        "mobile": "13912345678",
        "migrant_worker": True,
        "new_employment_form": False,
    }
    response = api.post("/v1/members", body, token="east_clerk")
    assert response.status_code == 201, response.text
    member = response.json()
    assert member["id_number"] == id_number[:6] + "********" + id_number[14:]
    assert member["mobile"] == "139****5678"
    assert member["status"] == "active" and member["migrant_worker"] is True
    assert isinstance(member["position"], int)
    read = api.get(f"/v1/members/{member['member_id']}", token="east_clerk").json()
    assert read["id_number"] == member["id_number"] and read["name"] == "李*"
    # The hidden digits of the number are the birth date: only the year is shown.
    assert read["birth_date"] is None and read["birth_year"] == int(id_number[6:10])
    assert member["name"] == "李*" and member["birth_date"] is None
    assert read["sex"] in ("male", "female") and read["pending_transfer"] is None
    found = api.post("/v1/members/search", {"id_number": id_number}, token="east_auditor")
    assert found.status_code == 200 and found.json()["member_id"] == member["member_id"]
    missing = api.post("/v1/members/search", {"id_number": api.next_person()})
    assert missing.status_code == 404


def test_unmasked_reads_are_recorded(api: Api) -> None:
    member = api.join()
    ledger = api.backend.open()
    before = ledger.head_position()
    read = api.get(f"/v1/members/{member['member_id']}", token="east_clerk_pii").json()
    assert "*" not in read["id_number"] and read["mobile"] == "13812345678"
    reads = [e for e in events_after(ledger, before) if type(e).__qualname__ == "PiiRead.Recorded"]
    assert len(reads) == 1
    assert reads[0].actor == actor_of(api.tokens["east_clerk_pii"])
    assert reads[0].member_ids == [member["member_id"]]
    assert read["id_number"] not in repr(reads[0].__dict__)
    # A masked read records nothing.
    before = ledger.head_position()
    api.get(f"/v1/members/{member['member_id']}", token="east_clerk")
    assert ledger.head_position() == before
    # A search answered unmasked records the read, with the search; one that finds nobody
    # and one answered masked record the search alone.
    for token, number, recorded in [
        ("east_clerk_pii", read["id_number"], [[member["member_id"]]]),
        ("east_clerk_pii", api.next_person(), []),
        ("east_clerk", read["id_number"], []),
    ]:
        before = ledger.head_position()
        found = api.post("/v1/members/search", {"id_number": number}, token=token)
        assert found.status_code == (200 if number == read["id_number"] else 404)
        written = events_after(ledger, before)
        kinds = [
            type(e).__qualname__ for e in written if type(e).__qualname__ != "SearchWindow.Opened"
        ]
        assert kinds == ["SearchWindow.Searched"] + ["PiiRead.Recorded"] * len(recorded)
        reads = [e for e in written if type(e).__qualname__ == "PiiRead.Recorded"]
        assert [e.member_ids for e in reads] == recorded
        assert all(e.purpose == "POST /v1/members/search" for e in reads)
        assert all(e.actor == actor_of(api.tokens[token]) for e in written)
    assert found.json()["id_number"] != read["id_number"]  # the last answer was masked


def test_an_unmasked_write_answer_is_recorded_in_the_write_and_each_replay_again(
    api: Api,
) -> None:
    ledger = api.backend.open()

    def reads(written: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
        return [(p, e) for p, e in written if type(e).__qualname__ == "PiiRead.Recorded"]

    body = {
        "id_number": api.next_person(),
        "name": "赵敏",
        "organization_code": api.tree.base_a,
        "joined_on": "2021-03-01",
        "mobile": "13912345678",
    }
    before = ledger.head_position()
    joined = api.post("/v1/members", body, token="east_clerk_pii", key="pii-join")
    assert joined.status_code == 201, joined.text
    member = joined.json()
    assert member["id_number"] == body["id_number"] and member["name"] == "赵敏"
    written = positioned_events_after(ledger, before)
    # One read recorded, with the join's events: the answer's position (the last event of
    # its write) is at or after it. Recorded by a write of its own after the answer's, it
    # would come after that position.
    [(read_at, read)] = reads(written)
    assert read_at <= member["position"] == written[-1][0]
    assert read.member_ids == [member["member_id"]] and read.purpose == "POST /v1/members"
    assert read.actor == actor_of(api.tokens["east_clerk_pii"])
    assert body["id_number"] not in repr(read.__dict__)
    # The replay shows the same answer again: another read, recorded on its own.
    before = ledger.head_position()
    replay = api.post("/v1/members", body, token="east_clerk_pii", key="pii-join")
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == member
    [(replay_read_at, replay_read)] = reads(positioned_events_after(ledger, before))
    assert replay_read_at > member["position"]
    assert replay_read.member_ids == [member["member_id"]]
    # Masked answers, first or replayed, and an unmasked answer that shows no personal data
    # record no read.
    before = ledger.head_position()
    masked = api.post("/v1/members", body, token="east_clerk", key="pii-join")
    assert masked.json()["id_number"] != body["id_number"]
    assert api.join(token="east_clerk")["member_id"]
    dues = api.post(
        "/v1/funds/dues",
        {
            "organization_code": api.tree.base_a,
            "period": "2024-02",
            "amount": "10.00",
            "received_on": "2024-02-20",
        },
        token="east_clerk_pii",
    )
    assert dues.status_code == 201, dues.text
    written = positioned_events_after(ledger, before)
    assert written and reads(written) == []


def test_every_event_names_its_token(api: Api) -> None:
    ledger = api.backend.open()
    before = ledger.head_position()
    api.join(token="a_clerk")
    stored = events_after(ledger, before)
    assert stored and {e.actor for e in stored} == {actor_of(api.tokens["a_clerk"])}


def test_already_member_and_rejoin(api: Api) -> None:
    member = api.join()
    id_number = api.get(f"/v1/members/{member['member_id']}", token="admin_pii").json()["id_number"]
    again = {
        "id_number": id_number,
        "name": "王芳",
        "organization_code": api.tree.base_b,
        "joined_on": "2022-01-01",
    }
    assert api.post("/v1/members", again).status_code == 409
    exit_ = api.post(
        f"/v1/members/{member['member_id']}/exit",
        {"effective_on": "2022-06-01", "change_code": 6, "reason_code": 5},
    )
    assert exit_.status_code == 200 and exit_.json()["status"] == "left"
    rejoined = api.post("/v1/members", again | {"joined_on": "2023-01-01"})
    assert rejoined.status_code == 201, rejoined.text
    assert rejoined.json()["member_id"] == member["member_id"]
    assert rejoined.json()["organization_code"] == api.tree.base_b


def test_transfer_accept_and_cancel(api: Api) -> None:
    member_id = api.join()["member_id"]
    started = api.post(
        f"/v1/members/{member_id}/transfers",
        {"to_organization_code": api.tree.base_w, "effective_on": "2022-01-01", "reason_code": 1},
        token="east_clerk",
    )
    assert started.status_code == 201, started.text
    transfer_id = started.json()["transfer_id"]
    assert started.json()["status"] == "pending"
    again = api.post(
        f"/v1/members/{member_id}/retention", {"effective_on": "2022-02-01", "reason_code": 2}
    )
    assert again.status_code == 409  # transfer pending
    cancelled = api.post(f"/v1/members/{member_id}/transfers/{transfer_id}/cancellation")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "active"
    transfer_id = api.post(
        f"/v1/members/{member_id}/transfers",
        {"to_organization_code": api.tree.base_w, "effective_on": "2022-03-01", "reason_code": 1},
    ).json()["transfer_id"]
    # The receiving union (outside the releasing one's scope) accepts.
    accepted = api.post(
        f"/v1/members/{member_id}/transfers/{transfer_id}/acceptance",
        {"effective_on": "2022-03-05"},
        token="west_clerk",
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["organization_code"] == api.tree.base_w
    unknown = api.post(
        f"/v1/members/{member_id}/transfers/{uuid.uuid4()}/acceptance",
        {"effective_on": "2022-04-01"},
    )
    assert unknown.status_code == 404


def test_retain_reinstate_correct_exit(api: Api) -> None:
    member_id = api.join()["member_id"]
    retained = api.post(
        f"/v1/members/{member_id}/retention", {"effective_on": "2021-01-01", "reason_code": 3}
    )
    assert retained.status_code == 200 and retained.json()["status"] == "retained"
    reinstated = api.post(f"/v1/members/{member_id}/reinstatement", {"effective_on": "2021-06-01"})
    assert reinstated.status_code == 200 and reinstated.json()["status"] == "active"
    corrected = api.post(
        f"/v1/members/{member_id}/corrections",
        {"name": "王芳芳", "mobile": None, "note": "据户口簿更正"},
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["name"] == "王**" and corrected.json()["mobile"] is None
    assert api.get(f"/v1/members/{member_id}", token="admin_pii").json()["name"] == "王芳芳"
    bad = api.post(
        f"/v1/members/{member_id}/exit",
        {"effective_on": "2021-07-01", "change_code": 4, "reason_code": 1},
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "change_code"
    early = api.post(
        f"/v1/members/{member_id}/exit",
        {"effective_on": "2020-01-01", "change_code": 5, "reason_code": 6},
    )
    assert early.status_code == 422 and early.json()["errors"][0]["field"] == "effective_on"
    removed = api.post(
        f"/v1/members/{member_id}/exit",
        {"effective_on": "2021-07-01", "change_code": 5, "reason_code": 6},
    )
    assert removed.status_code == 200 and removed.json()["status"] == "left"
    assert (
        api.post(
            f"/v1/members/{member_id}/reinstatement", {"effective_on": "2021-08-01"}
        ).status_code
        == 409
    )


def test_member_errors(api: Api) -> None:
    unknown = str(uuid.uuid4())
    assert api.get(f"/v1/members/{unknown}").status_code == 404
    assert api.get("/v1/members/not-a-uuid").status_code == 404
    for path, body in (
        (
            "transfers",
            {
                "to_organization_code": api.tree.base_w,
                "effective_on": "2022-01-01",
                "reason_code": 1,
            },
        ),
        ("retention", {"effective_on": "2022-01-01", "reason_code": 1}),
        ("reinstatement", {"effective_on": "2022-01-01"}),
        ("exit", {"effective_on": "2022-01-01", "change_code": 6, "reason_code": 5}),
        ("corrections", {"name": "张三"}),
    ):
        assert api.post(f"/v1/members/{unknown}/{path}", body).status_code == 404, path
    bad = {
        "id_number": "110105199003071230",
        "name": "赵六",
        "organization_code": api.tree.base_a,
        "joined_on": "2020-01-01",
    }
    response = api.post("/v1/members", bad)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "id_number"
    young = bad | {"id_number": api.next_person(), "joined_on": "1975-01-01"}
    response = api.post("/v1/members", young)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "joined_on"
    not_base = bad | {"id_number": api.next_person(), "organization_code": api.tree.east}
    response = api.post("/v1/members", not_base)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "organization_code"
    member_id = api.join()["member_id"]
    nothing = api.post(f"/v1/members/{member_id}/corrections", {"note": "无"})
    assert nothing.status_code == 422
    # Outside the token's scope: answered as an unknown member (test_outside_scope_is_unknown).
    assert api.get(f"/v1/members/{member_id}", token="west_clerk").status_code == 404


def _problem_without(response, text: str) -> dict:
    """The problem body with one id taken out of its detail, to compare two answers."""
    body = response.json()
    return {**body, "detail": body["detail"].replace(text, "<id>")}


def test_a_member_outside_the_scope_is_answered_as_an_unknown_one(api: Api) -> None:
    member = api.join(api.tree.base_a)
    member_id = member["member_id"]
    id_number = api.get(f"/v1/members/{member_id}", token="admin_pii").json()["id_number"]
    unknown_id = str(uuid.uuid4())
    # GET: the same status and the same body as for a member id that names nobody.
    outside = api.get(f"/v1/members/{member_id}", token="west_clerk")
    unknown = api.get(f"/v1/members/{unknown_id}", token="west_clerk")
    assert outside.status_code == unknown.status_code == 404
    assert _problem_without(outside, member_id) == _problem_without(unknown, unknown_id)
    for path in ("", "/history"):
        assert api.get(f"/v1/members/{member_id}{path}", token="west_clerk").status_code == 404
    retained = api.post(
        f"/v1/members/{member_id}/retention",
        {"effective_on": "2021-01-01", "reason_code": 2},
        token="west_clerk",
    )
    assert retained.status_code == 404
    # Search: the same for a member elsewhere as for a person who is nobody's member.
    elsewhere = api.post("/v1/members/search", {"id_number": id_number}, token="west_clerk")
    nobody = api.post("/v1/members/search", {"id_number": api.next_person()}, token="west_clerk")
    assert elsewhere.status_code == nobody.status_code == 404
    assert elsewhere.json() == nobody.json()
    assert elsewhere.headers["content-type"] == nobody.headers["content-type"]
    # Inside the scope both still answer.
    assert api.get(f"/v1/members/{member_id}", token="east_clerk").status_code == 200
    found = api.post("/v1/members/search", {"id_number": id_number}, token="a_clerk")
    assert found.status_code == 200 and found.json()["member_id"] == member_id


def test_already_a_member_names_the_union_only_within_scope(api: Api) -> None:
    member = api.join(api.tree.base_a)
    id_number = api.get(f"/v1/members/{member['member_id']}", token="admin_pii").json()["id_number"]
    again = {"id_number": id_number, "name": "王芳", "joined_on": "2022-01-01"}
    refused = api.post(
        "/v1/members", again | {"organization_code": api.tree.base_w}, token="west_clerk"
    )
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert api.tree.base_a not in detail and api.tree.east not in detail
    assert "active" not in detail
    for token in ("east_clerk", "admin"):
        told = api.post("/v1/members", again | {"organization_code": api.tree.base_b}, token=token)
        assert told.status_code == 409 and api.tree.base_a in told.json()["detail"], token
    # Nothing was written by any of them.
    assert (
        api.get(f"/v1/members/{member['member_id']}/history", token="admin").json()["items"][-1][
            "change_code"
        ]
        == 1
    )


def test_only_the_receiving_side_accepts_a_transfer(api: Api) -> None:
    def transfer(to: str) -> tuple[str, str]:
        member_id = api.join(api.tree.base_a)["member_id"]
        started = api.post(
            f"/v1/members/{member_id}/transfers",
            {"to_organization_code": to, "effective_on": "2022-01-01", "reason_code": 1},
            token="a_clerk",
        )
        assert started.status_code == 201, started.text
        return member_id, started.json()["transfer_id"]

    def accept(member_id: str, transfer_id: str, token: str):
        return api.post(
            f"/v1/members/{member_id}/transfers/{transfer_id}/acceptance",
            {"effective_on": "2022-02-01"},
            token=token,
        )

    def cancel(member_id: str, transfer_id: str, token: str):
        return api.post(
            f"/v1/members/{member_id}/transfers/{transfer_id}/cancellation", token=token
        )

    member_id, transfer_id = transfer(api.tree.base_w)
    # The releasing side (its union, or the county above it) may not accept...
    for token in ("a_clerk", "east_clerk", "east_admin"):
        refused = accept(member_id, transfer_id, token)
        assert refused.status_code == 403, (token, refused.text)
    assert api.get(f"/v1/members/{member_id}", token="admin").json()["status"] == (
        "transfer_pending"
    )
    # ...the receiving side may.
    accepted = accept(member_id, transfer_id, "west_clerk")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["organization_code"] == api.tree.base_w
    # Either side may cancel.
    for token in ("a_clerk", "west_clerk"):
        member_id, transfer_id = transfer(api.tree.base_w)
        cancelled = cancel(member_id, transfer_id, token)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "active", token
    # A token that covers neither union is told what it would be told of an unknown member.
    member_id, transfer_id = transfer(api.tree.base_b)
    assert accept(member_id, transfer_id, "west_clerk").status_code == 404
    assert cancel(member_id, transfer_id, "west_clerk").status_code == 404
    assert accept(member_id, transfer_id, "east_clerk").status_code == 200


def test_searches_are_limited_per_token_and_recorded(api: Api) -> None:
    """Past 60 searches in a minute a token gets 429 with Retry-After; every search it made
    is in the audit stream with the member id found, and no identity number anywhere."""
    limit = api.backend.settings.searches_per_minute
    assert limit == 60  # the default
    ledger = api.backend.open()
    api.tokens["searcher"] = Tokens(ledger).mint(role="clerk", organization_code=api.tree.east)[1]
    member = api.join(api.tree.base_a)
    id_number = api.get(f"/v1/members/{member['member_id']}", token="admin_pii").json()["id_number"]
    elsewhere = api.join(api.tree.base_w)
    elsewhere_number = api.get(f"/v1/members/{elsewhere['member_id']}", token="admin_pii").json()[
        "id_number"
    ]
    numbers = [id_number, api.next_person(), elsewhere_number]
    before = ledger.head_position()
    answers = []
    # The limit is per UTC minute: 61 searches normally fall in one; if they straddle two,
    # the 429 comes later, but within three minutes' worth.
    for n in range(3 * limit + 1):
        answer = api.post("/v1/members/search", {"id_number": numbers[n % 3]}, token="searcher")
        answers.append(answer)
        if answer.status_code == 429:
            break
    refused = answers[-1]
    assert refused.status_code == 429, [a.status_code for a in answers]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["status"] == 429 and refused.headers["content-type"].startswith(
        "application/problem+json"
    )
    assert {a.status_code for a in answers[:-1]} == {200, 404}
    assert len(answers) > limit
    stream = api.get("/v1/audit/events", params={"after": before, "limit": 1000}, token="auditor")
    assert stream.status_code == 200, stream.text
    actor = actor_of(api.tokens["searcher"])
    searched = [
        e
        for e in stream.json()["items"]
        if e["type"] == "ledger:SearchWindow.Searched" and e["actor"] == actor
    ]
    assert len(searched) == len(answers) - 1  # every search answered, none refused
    by_window: dict[str, int] = {}
    for event in searched:
        by_window[event["stream_id"]] = by_window.get(event["stream_id"], 0) + 1
    assert max(by_window.values()) == limit  # the window that refused was full
    found = [e["data"]["member_id"] for e in searched]
    # Found within the scope: the member id; unknown, or a member outside the scope: none.
    assert found[:3] == [member["member_id"], None, None]
    assert all(e["recorded_at"] for e in searched)
    text = stream.text
    for number in numbers:
        assert number not in text and number[:6] + "********" + number[14:] not in text

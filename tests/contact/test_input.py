"""What the API and the pages refuse: cases without a département, empty names, dates that
make no sense, ids beyond any record; the département read from the postcode."""

from __future__ import annotations

from datetime import date
from typing import Any

import aiohttp
import pytest

from contact import rules
from kit.testing import browser_session, csrf_of
from tests.contact.conftest import Running
from tests.contact.test_api import CASE, call, contact

DOCTOR_SCOPE = "rpps:10003456789"


@pytest.mark.parametrize(
    ("postcode", "department"),
    [("75011", "75"), ("01000", "01"), ("20090", "2A"), ("20167", "2A"), ("20200", "2B"),
     ("20600", "2B"), ("97400", "974"), ("97110", "971"), ("98800", "988"), ("00000", ""),
     ("96000", ""), ("7501", ""), ("ABCDE", ""), ("", "")],
)  # fmt: skip
def test_department_of_the_postcode(postcode: str, department: str) -> None:
    assert rules.department_of(postcode) == department


def test_department_cleaning() -> None:
    assert [rules.clean_department(v) for v in ("75", "2a", "971", "1", "")] == [
        "75", "2A", "971", "01", "",
    ]  # fmt: skip
    for bad in ("00", "96", "2C", "970", "ABC"):
        with pytest.raises(ValueError):
            rules.clean_department(bad)


def test_case_dates_that_make_no_sense() -> None:
    today = date(2020, 10, 23)
    rules.check_case_dates(date(2020, 10, 22), date(2020, 10, 20), None, today)
    for diagnosis, onset, sampled, field in [
        (date(2020, 10, 24), None, None, "diagnosis_date"),
        (date(1900, 10, 22), None, None, "diagnosis_date"),
        (date(2020, 10, 22), date(2020, 10, 23), None, "onset_date"),  # after the diagnosis
        (date(2020, 10, 22), date(2020, 10, 30), None, "onset_date"),
        (date(2020, 10, 22), None, date(2021, 1, 1), "sampled_date"),
    ]:
        with pytest.raises(rules.DateError) as caught:
            rules.check_case_dates(diagnosis, onset, sampled, today)
        assert caught.value.field == field


async def test_api_refusals_of_input(running: Running) -> None:
    api = f"{running.url}/contact/api/v1"
    doctor = await running.api_key("doctor", DOCTOR_SCOPE)
    async with aiohttp.ClientSession() as s:

        async def refused(body: dict[str, Any], url: str = f"{api}/cases") -> tuple[int, Any]:
            return await call(s, "POST", url, doctor, body)

        no_postcode = {k: v for k, v in CASE.items() if k != "postcode"}
        status, body = await refused(no_postcode)
        assert status == 422 and body["error"] == "no_department", body
        assert "postcode" in body["message"]
        assert (await refused({**CASE, "postcode": "7501"}))[0] == 422
        assert (await refused({**CASE, "department": "99"}))[0] == 422
        for last, first in (("", "Élodie"), ("---", "Élodie"), ("Dupont", "  "), ("Dupont", ".")):
            status, body = await refused({**CASE, "last_name": last, "first_name": first})
            assert status in (400, 422) and body["error"] == "no_name", (last, first, body)
        bad_dates = (("diagnosis_date", "2020-10-24"), ("diagnosis_date", "1900-10-22"),
                     ("onset_date", "2020-10-23"), ("onset_date", "2021-01-01"),
                     ("sampled_date", "2020-11-01"), ("birth_date", "2030-01-01"))  # fmt: skip
        for field, value in bad_dates:
            status, body = await refused({**CASE, field: value})
            assert status == 422 and body["error"] == "bad_date", (field, value, body)
            assert field.split("_")[0] in body["message"].replace("symptom onset", "onset")
        # Corsica and overseas: the département from the postcode
        status, case = await refused({**CASE, "postcode": "20090", "nir": None})
        assert status == 201 and case["department"] == "2A", case
        status, case = await refused({**CASE, "postcode": "97400", "nir": None,
                                      "last_name": "Payet"})  # fmt: skip
        assert status == 201 and case["department"] == "974", case
        url = f"{api}/cases/{case['id']}/contacts"
        no_postcode = {k: v for k, v in contact("Hoarau", "Léa").items() if k != "postcode"}
        status, body = await refused(no_postcode, url)
        assert status == 422 and body["error"] == "no_department", body
        status, body = await refused(contact("Hoarau", "Léa", last_contact="2020-10-24"), url)
        assert status == 422 and body["error"] == "bad_date", body
        status, body = await refused(contact("", "Léa"), url)
        assert status == 422 and body["error"] == "no_name", body
        # ids beyond any record: 404, never a 500
        huge = "99999999999999999999"
        for method, path, sent in (("GET", f"cases/{huge}", None),
                                   ("POST", f"cases/{huge}/contacts", contact("Hoarau", "Léa")),
                                   ("POST", f"contacts/{huge}/calls", {"outcome": "reached"}),
                                   ("GET", "cases/2147483648", None)):  # fmt: skip
            status, body = await call(s, method, f"{api}/{path}", doctor, sent)
            assert status == 404 and "error" in body, (path, status, body)
        assert (await call(s, "GET", f"{api}/cases?page=0", doctor))[0] == 400
        assert (await call(s, "GET", f"{api}/cases?page=x", doctor))[0] == 400
        # "²".isdigit() is true but int("²") raised (a 500); int() refuses 4,300 digits
        for page in ("%C2%B2", "9" * 5000, "%20" + "5"):
            status, body = await call(s, "GET", f"{api}/cases?page={page}", doctor)
            assert status == 400 and body["error"] == "bad_page", (page, status, body)
        for path, expected in (
            ("cases/%C2%B2", 400),
            ("cases/" + "9" * 5000, 404),
            ("cases/0", 404),
        ):
            status, body = await call(s, "GET", f"{api}/{path}", doctor)
            assert status == expected, (path, status, body)


async def test_pages_show_the_field_at_fault(running: Running) -> None:
    await running.person("dr.a", "doctor", "rpps:1")
    async with browser_session() as s:
        await running.sign_in(s, "dr.a")
        async with s.get(f"{running.url}/contact/cases/new") as r:
            token = csrf_of(await r.text())
        form = {"csrf_token": token, "last_name": "Dupont", "first_name": "Élodie",
                "diagnosis_date": "2020-10-22", "onset_date": "2020-10-20"}  # fmt: skip
        async with s.post(f"{running.url}/contact/cases/new", data=form) as r:
            text = await r.text()
            assert r.status == 422 and 'id="postcode-error"' in text, text
            assert 'value="Dupont"' in text
        form["postcode"] = "75011"
        form["onset_date"] = "2020-10-25"
        async with s.post(f"{running.url}/contact/cases/new", data=form) as r:
            text = await r.text()
            assert r.status == 422 and 'id="onset_date-error"' in text
        form["onset_date"], form["last_name"] = "2020-10-20", "?"
        async with s.post(f"{running.url}/contact/cases/new", data=form) as r:
            text = await r.text()
            assert r.status == 422 and 'id="last_name-error"' in text
        for path in ("cases/99999999999999999999", "contacts/99999999999999999999"):
            async with s.get(f"{running.url}/contact/{path}") as r:
                assert r.status == 404
        async with s.get(f"{running.url}/contact/cases?page=%C2%B2") as r:
            assert r.status == 400, await r.text()

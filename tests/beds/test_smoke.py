from __future__ import annotations

from tests.beds.conftest import PITIE, Running, browser_session


async def test_smoke(running: Running) -> None:
    await running.person("alice", "staff", f"finess:{PITIE}")
    async with browser_session() as client:
        await running.sign_in(client, "alice")
        async with client.get(f"{running.url}/beds/") as r:
            text = await r.text()
            assert r.status == 200, text
            print(r.url)
            assert "PITIE" in text

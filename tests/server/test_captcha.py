"""The registration gate in each mode, over real HTTP: what is handed out, what is drawn or
spoken, what passes, and that a bad request spends nothing."""

from __future__ import annotations

import io
import shutil
import wave
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from PIL import Image

from client_sim.clock import VirtualClock
from loadtest.messages import register_body
from protocol.pow import solve
from server.app import CAPTCHA, create_app
from server.captcha import AUDIO_ALPHABET, IMAGE_ALPHABET, IMAGE_SIZE, normalise
from server.settings import Settings
from server.speech import Voices, language_of
from tests.server.conftest import Running, code_service

API = "/api/v6"
NO_ESPEAK = "espeak-ng is not installed (apt-get install espeak-ng): no voices to record"


@pytest.fixture
async def start(settings: Settings, clock: VirtualClock) -> AsyncIterator[Callable[..., Any]]:
    """Start a server with the given gate; closed at the end of the test."""
    servers: list[TestServer] = []

    async def make(mode: str, **changes: Any) -> Running:
        changed = replace(settings, captcha=mode, pow_difficulty=6, **changes)
        codes = code_service(Path(settings.data_dir), clock)
        server = TestServer(create_app(changed, codes, clock=clock), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return Running(server, codes)

    yield make
    for server in servers:
        await server.close()


async def post(url: str, body: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as r:
        return r.status, await r.json()


async def get(url: str) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as r:
        return r.status, r.content_type, await r.read()


async def test_image_mode_hands_out_images_and_audio_not_pow(start: Callable[..., Any]) -> None:
    running = await start("image")
    for kind in ("IMAGE", "image", "AUDIO"):
        status, made = await post(f"{running.url}{API}/captcha", {"type": kind, "locale": "fr"})
        assert status == 201 and set(made) == {"id"} and len(made["id"]) == 32
    status, answer = await post(f"{running.url}{API}/captcha", {"type": "POW", "locale": "fr"})
    assert (status, answer["error"]) == (400, "captcha_type")
    for bad in ({"type": "VIDEO"}, {"type": 3}, {"locale": "fr"}, {"type": "IMAGE", "x": 1}):
        status, _ = await post(f"{running.url}{API}/captcha", bad)
        assert status == 400


async def test_the_image_is_a_png_of_the_answer_size(start: Callable[..., Any]) -> None:
    running = await start("image")
    _, made = await post(f"{running.url}{API}/captcha", {"type": "IMAGE", "locale": "en"})
    status, kind, png = await get(f"{running.url}{API}/captcha/{made['id']}/image")
    assert (status, kind) == (200, "image/png")
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", IMAGE_SIZE)
    stored = await running.service.store.get_captcha(made["id"], running.service.now_ntp())
    assert stored is not None and len(stored.answer) == 6
    assert set(stored.answer) <= set(IMAGE_ALPHABET)
    for bad_id in ("nothex", "0" * 31, "A" * 32):
        status, _, _ = await get(f"{running.url}{API}/captcha/{bad_id}/image")
        assert status == 400
    status, _, _ = await get(f"{running.url}{API}/captcha/{'0' * 32}/image")
    assert status == 410
    # Its letters have no recording: the audio of an image captcha is refused, not a 500
    # (found by schemathesis).
    status, _, _ = await get(f"{running.url}{API}/captcha/{made['id']}/audio")
    assert status == 400


def test_answers_are_read_as_people_type_them() -> None:
    assert normalise(" ab c 2 3 4") == "ABC234"
    assert language_of("fr-FR") == language_of("fr_FR") == language_of("FR") == "fr"
    assert language_of("en-GB") == "en"
    assert language_of("xx") == language_of(None) == language_of(7) == "fr"  # the reference's


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason=NO_ESPEAK)
async def test_audio_is_a_wav_spoken_in_the_apps_language(
    start: Callable[..., Any], tmp_path: Path
) -> None:
    running = await start("image")
    waves = {}
    for locale in ("fr", "en"):
        _, made = await post(f"{running.url}{API}/captcha", {"type": "AUDIO", "locale": locale})
        status, kind, wav = await get(f"{running.url}{API}/captcha/{made['id']}/audio")
        assert (status, kind) == (200, "audio/wav")
        with wave.open(io.BytesIO(wav)) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 1, 8000)
            assert 3 < w.getnframes() / 8000 < 60  # six digits, with pauses
        stored = await running.service.store.get_captcha(made["id"], running.service.now_ntp())
        assert stored is not None and set(stored.answer) <= set(AUDIO_ALPHABET)
        waves[locale] = wav
    # The voices were recorded per language, and differ: "sept" is not "seven".
    voices = Path(running.service.settings.data_dir) / "captcha-voices"
    french, english = (voices / lang / "7" / "espeak.wav" for lang in ("fr", "en"))
    assert french.read_bytes() != english.read_bytes()


def test_without_a_speech_engine_the_packages_english_voices_serve(tmp_path: Path) -> None:
    voices = Voices(tmp_path, engine=None)
    from captcha.audio import DATA_DIR

    assert voices.voicedir("fr", AUDIO_ALPHABET) == DATA_DIR


async def test_pow_mode_takes_a_proof_of_work_once(start: Callable[..., Any]) -> None:
    running = await start("pow")
    url = f"{running.url}{API}"
    status, answer = await post(f"{url}/captcha", {"type": "IMAGE", "locale": "fr"})
    assert (status, answer["error"]) == (400, "captcha_type")
    status, made = await post(f"{url}/captcha", {"type": "POW"})
    assert status == 201 and made["difficulty"] == 6
    status, _, _ = await get(f"{url}/captcha/{made['id']}/image")
    assert status == 410  # nothing to draw
    wrong = next(str(n) for n in range(1000) if str(n) != solve(made["id"], 6))
    status, answer = await post(f"{url}/register", _register(wrong, made["id"]))
    assert status == 401
    answer_ok = solve(made["id"], 6)
    status, answer = await post(f"{url}/register", _register(answer_ok, made["id"]))
    assert status == 201
    status, answer = await post(f"{url}/register", _register(answer_ok, made["id"]))
    assert (status, answer["error"]) == (410, "captcha_gone")


def _register(captcha: str, captcha_id: str) -> Any:
    import orjson

    return orjson.loads(register_body(captcha, captcha_id))


async def test_off_mode_draws_everything_and_lets_anything_pass(
    start: Callable[..., Any],
) -> None:
    running = await start("off")
    url = f"{running.url}{API}"
    for kind in ("IMAGE", "AUDIO", "POW"):
        status, made = await post(f"{url}/captcha", {"type": kind, "locale": "en"})
        assert status == 201
    status, kind, _ = await get(f"{url}/captcha/{made['id']}/image")
    assert status == 410  # a POW captcha has no picture
    _, made = await post(f"{url}/captcha", {"type": "IMAGE", "locale": "en"})
    status, kind, _ = await get(f"{url}/captcha/{made['id']}/image")
    assert (status, kind) == (200, "image/png")  # the apps' registration screen works
    status, _ = await post(f"{url}/register", _register("anything", "0" * 32))
    assert status == 201


async def test_a_bad_registration_spends_no_captcha(start: Callable[..., Any]) -> None:
    """A malformed key or push information is refused before the captcha is used; a
    registration the store cannot take gives its captcha back."""
    running = await start("image")
    url = f"{running.url}{API}"
    _, made = await post(f"{url}/captcha", {"type": "IMAGE", "locale": "en"})
    store = running.service.store
    answer = (await store.get_captcha(made["id"], running.service.now_ntp())).answer
    body = _register(answer, made["id"])
    for broken in (
        {"clientPublicECDHKey": "bm90IGEga2V5"},
        {"pushInfo": {"token": "x"}},
        {"pushInfo": {"token": "\x00", "locale": "fr", "timezone": "UTC"}},
    ):
        status, _ = await post(f"{url}/register", body | broken)
        assert status == 400
    original = store.create_registration

    async def full(*args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("store unreachable")

    store.create_registration = full  # type: ignore[method-assign]
    status, _ = await post(f"{url}/register", body)
    assert status == 500
    store.create_registration = original  # type: ignore[method-assign]
    status, _ = await post(f"{url}/register", body)
    assert status == 201


async def test_clients_are_bounded(start: Callable[..., Any]) -> None:
    """Thirty pictures or recordings an hour per client, ten wrong answers."""
    running = await start("image")
    url = f"{running.url}{API}"
    statuses = [
        (await post(f"{url}/captcha", {"type": "IMAGE", "locale": "en"}))[0] for _ in range(31)
    ]
    assert statuses == [201] * 30 + [429]
    gate = running.server.app[CAPTCHA]
    gate.drawings = type(gate.drawings)(gate.drawings.limit)  # a new hour
    wrongs = []
    for _ in range(4):  # four captchas, three wrong answers each: the eleventh is refused
        _, made = await post(f"{url}/captcha", {"type": "IMAGE", "locale": "en"})
        for _ in range(3):
            wrongs.append((await post(f"{url}/register", _register("NOPE", made["id"])))[0])
    assert wrongs[:10] == [401] * 10 and wrongs[10] == 429

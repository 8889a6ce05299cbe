"""The typed keys under which the application holds its parts (shared by app and handlers)."""

from __future__ import annotations

from aiohttp import web

from kit.memory import IdleTrimmer
from server.captcha import CaptchaGate
from server.service import RobertService
from server.worker import ReportWorker

SERVICE = web.AppKey("service", RobertService)
CAPTCHA = web.AppKey("captcha", CaptchaGate)
WORKER = web.AppKey("worker", ReportWorker)
TRIMMER = web.AppKey("trimmer", IdleTrimmer)
"""Gives a burst's memory back to the system once the process is quiet (``idle_trim``)."""

"""Memory over a session: closed screens are freed, and the start-up heap is frozen only while
the app runs."""

from __future__ import annotations

import gc
import weakref

from textual._styles_cache import StylesCache

from cis_tui.tui.screens.help import HelpScreen
from cis_tui.tui.textual_fixes import stop_style_cache_leak
from tests.tui.conftest import settle


async def test_closed_screens_do_not_keep_their_render_caches(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        caches: list[weakref.ref[StylesCache]] = []
        for _ in range(5):
            await pilot.press("f1")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            caches += [weakref.ref(w._styles_cache) for w in app.screen.walk_children()]
            await pilot.press("escape")
            await pilot.pause()
        await pilot.pause()
        gc.collect()
        alive = [ref for ref in caches if ref() is not None]
        # Textual's own lru_cache on StylesCache.get_inner_outer kept every one of them
        # (and every line they drew) alive: textual#6665.
        assert not alive, f"{len(alive)} of {len(caches)} help-screen render caches still alive"


def test_the_style_cache_fix_applies_to_the_installed_textual():
    assert stop_style_cache_leak() is True, "Textual changed get_inner_outer: review the fix"
    assert stop_style_cache_leak() is True, "idempotent"


async def test_the_heap_is_frozen_while_the_app_runs_and_released_after(make_app):
    gc.unfreeze()
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0

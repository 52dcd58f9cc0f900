"""A work-around for a Textual memory leak that slows the wizard down over a session.

Textual (8.2.8, the newest release) caches `StylesCache.get_inner_outer` with `functools.lru_cache`
on the method, so the cache keys hold `self`: the style caches of up to 1024 removed widgets,
with every line they ever rendered, stay alive (Textualize/textual#6665, open). Each help screen
or dialog that is opened and closed adds its widgets' caches, and every full garbage collection
then walks them: pauses of 100 ms during a health gate after a few dozen dialogs.

The result depends only on the two colours, so the cache is keyed on them alone.
"""

from __future__ import annotations

from functools import lru_cache

from textual._styles_cache import StylesCache
from textual.color import Color
from textual.style import Style


@lru_cache(1024)
def _inner_outer(base_background: Color, background: Color) -> tuple[Style, Style]:
    """Textual's `get_inner_outer`, unchanged, without the instance in the cache key."""
    return Style(background=base_background + background), Style(background=base_background)


def _get_inner_outer(
    self: StylesCache, base_background: Color, background: Color
) -> tuple[Style, Style]:
    return _inner_outer(base_background, background)


def stop_style_cache_leak() -> bool:
    """Replace the leaking cache; True if Textual still has it (the fix is then in place)."""
    current = StylesCache.__dict__.get("get_inner_outer")
    if current is _get_inner_outer:
        return True
    if not hasattr(current, "cache_clear"):  # fixed upstream: nothing to do
        return False
    current.cache_clear()  # type: ignore[union-attr]
    StylesCache.get_inner_outer = _get_inner_outer  # type: ignore[method-assign, assignment]
    return True

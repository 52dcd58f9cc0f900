"""The command palette finds a check by id or title and moves the checks table to it."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import Hit, Hits, Provider

from cis_tui.tui.display import short_component

if TYPE_CHECKING:
    from cis_tui.tui.screens.checks import ChecksScreen


class CheckCommands(Provider):
    """`Go to 1.2.15 API server profiling…` for every check of the last scan."""

    def _checks_screen(self) -> ChecksScreen | None:
        from cis_tui.tui.screens.checks import ChecksScreen

        screen = self.screen
        return screen if isinstance(screen, ChecksScreen) else None

    async def search(self, query: str) -> Hits:
        screen = self._checks_screen()
        if screen is None:
            return
        matcher = self.matcher(query)
        for result in screen.results:
            text = f"Go to {result.id} {result.check.title}"
            score = matcher.match(text)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(text),
                    partial(screen.go_to, result.id),
                    text=text,
                    help=f"{result.status.value} · {short_component(result.check.component)}",
                )

"""The key footer: Textual's Footer, rebuilt only when the keys it shows change."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

#: What the footer shows: each shown binding's key, action, label, state and tooltip.
KeySignature = tuple[tuple[str, str, str, bool, str], ...]


class KeyFooter(Footer):
    """A Footer that skips rebuilding when the shown keys did not change.

    Textual's Footer recomposes all of its keys whenever the screen publishes a bindings update,
    and a focus change always publishes one. Rebuilding a dozen keys costs tens of milliseconds
    here, so tab or a gate's progress would repaint late; the keys rarely change at all.
    """

    def __init__(self) -> None:
        super().__init__()
        # Show the keys in the first frame; Footer otherwise waits for a bindings update.
        self.set_reactive(Footer._bindings_ready, True)
        self._shown: KeySignature | None = None
        self._check_pending = False

    def _signature(self) -> KeySignature:
        return tuple(
            (binding.key, binding.action, binding.description, enabled, tooltip)
            for (_node, binding, enabled, tooltip) in self.screen.active_bindings.values()
            if binding.show or binding.key == self.app.COMMAND_PALETTE_BINDING
        )

    def compose(self) -> ComposeResult:
        self._shown = self._signature()
        for widget in super().compose():
            if isinstance(widget, FooterKey) and not widget.has_class("-command-palette"):
                # A binding's key starts compact and is then bound to this footer's (not
                # compact) style: two restyles per key on mount. Start it as it will be.
                widget.set_reactive(FooterKey.compact, self.compact)
            yield widget

    def bindings_changed(self, screen: Screen[object]) -> None:
        if not screen.app.app_focus or not self.is_attached or screen is not self.screen:
            return
        if not self._check_pending:  # one check for a burst of updates
            self._check_pending = True
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        self._check_pending = False
        if self.is_attached and self._signature() != self._shown:  # its screen may be gone
            await self.recompose()

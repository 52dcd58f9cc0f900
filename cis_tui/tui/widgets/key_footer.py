"""The key footer: Textual's Footer, rebuilt only when the keys it shows change."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

#: What the footer shows: each shown binding's key, action, label, state and tooltip.
KeySignature = tuple[tuple[str, str, str, bool, str], ...]


def _width(key: FooterKey, compact: bool) -> int:
    """Cells a footer key takes: the key and its label with their padding and margin."""
    return len(key.key_display) + len(key.description) + (2 if compact else 3)


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
        return (
            *(
                (binding.key, binding.action, binding.description, enabled, tooltip)
                for (_node, binding, enabled, tooltip) in self.screen.active_bindings.values()
                if binding.show or binding.key == self.app.COMMAND_PALETTE_BINDING
            ),
            ("width", "", "", True, str(self.app.size.width)),
        )

    def compose(self) -> ComposeResult:
        self._shown = self._signature()
        widgets = self._fit(list(super().compose()))
        for widget in widgets:
            if isinstance(widget, FooterKey) and not widget.has_class("-command-palette"):
                # A binding's key starts compact and is then bound to this footer's style:
                # two restyles per key on mount. Start it as it will be.
                widget.set_reactive(FooterKey.compact, self.compact)
            yield widget

    def _fit(self, widgets: list[Widget]) -> list[Widget]:
        """Keys that fit the terminal's width: all of them if they can, else in the compact
        style, then without the screen's FOOTER_OPTIONAL actions (help and the palette still
        list those), so quit and help are never cut off."""
        keys = [w for w in widgets if isinstance(w, FooterKey)]
        palette = [w for w in keys if w.has_class("-command-palette")]
        budget = self.app.size.width - sum(_width(w, compact=True) for w in palette) - 1
        optional = list(getattr(self.screen, "FOOTER_OPTIONAL", ()))
        compact = False
        while sum(_width(w, compact) for w in keys if w not in palette) > budget:
            if not compact:
                compact = True
            elif optional:
                action = optional.pop(0)
                keys = [w for w in keys if w.action != action]
            else:
                break
        self.set_reactive(Footer.compact, compact)
        self.set_class(compact, "-compact")
        return [w for w in widgets if not isinstance(w, FooterKey) or w in keys]

    def on_resize(self) -> None:
        self.bindings_changed(self.screen)

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

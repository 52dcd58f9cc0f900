"""Select every scored failing check, jump to a check from the palette, see when the scan was taken
(issue 12, items 11 and 13)."""

from __future__ import annotations

from cis_tui.audit.evaluate import Status
from cis_tui.tui.filters import visible, why_not_selectable
from cis_tui.tui.screens.checks import ChecksScreen
from cis_tui.tui.widgets.check_table import CheckTable
from tests.tui.conftest import screen_text, settle, wait_until


async def test_a_selects_every_fixable_check_the_filters_show_and_again_unselects(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ChecksScreen)
        await pilot.press("c")  # only kube-apiserver
        shown = visible(screen.results, screen.filters)
        fixable = {
            r.id
            for r in shown
            if r.status is Status.FAIL and r.check.scored and why_not_selectable(r) is None
        }
        manual = {r.id for r in shown if r.status is Status.WARN and why_not_selectable(r) is None}
        assert fixable and manual, "the apiserver has scored failures and manual ones (1.2.1)"
        await pilot.press("a")
        assert screen.selected == fixable  # never a manual check such as 1.2.1 by surprise
        assert "1.2.1" in manual and "1.2.1" not in screen.selected
        assert f"{len(fixable)} selected" in screen_text(app)
        await pilot.press("a")
        assert screen.selected == set()


async def test_the_palette_goes_to_a_check_even_when_the_filters_hide_it(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(CheckTable)
        await pilot.press("c")  # kube-apiserver only: 4.1.9 (kubelet) is hidden
        assert "4.1.9" not in {r.id for r in table.results}
        await pilot.press("ctrl+p")
        await pilot.press(*"go to 4.1.9")
        await wait_until(pilot, lambda: "Go to 4.1.9" in screen_text(app), what="the hit")
        await pilot.press("enter")
        await wait_until(pilot, lambda: table.current_id == "4.1.9", what="the cursor on 4.1.9")
        assert app.focused is table


async def test_the_status_line_says_when_the_node_was_scanned(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "scanned 12:00:00" in screen_text(app)


async def test_the_checks_screen_names_a_stray_copy_and_the_way_out(make_app, offline_settings):
    manifests = offline_settings.layout.manifests_dir
    (manifests / "kube-apiserver.yaml.bak").write_bytes(
        (manifests / "kube-apiserver.yaml").read_bytes()
    )
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        text = " ".join(screen_text(app).split())  # wrapped lines joined
        assert "kube-apiserver.yaml.bak" in text and "second kube-apiserver pod" in text
        assert "the one that runs. Compare it with the real manifest" in text  # a sentence
        assert "mv /etc/kubernetes/manifests/kube-apiserver.yaml.bak" in text

"""The checks screen: order, filters, search, selection, details, literal text, keys."""

from __future__ import annotations

from cis_tui.audit.evaluate import Status
from cis_tui.tui.screens.checks import ChecksScreen
from cis_tui.tui.widgets.check_table import CheckTable
from tests.tui.conftest import screen_text, select_checks, settle

ORDER = [Status.FAIL, Status.ERROR, Status.WARN, Status.PASS, Status.SKIP]


def shown(app) -> list:
    return app.screen.query_one(CheckTable).results


async def test_failing_first_and_filters(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        rows = shown(app)
        assert len(rows) == 92
        ranks = [ORDER.index(r.status) for r in rows]
        assert ranks == sorted(ranks), "failing first: FAIL, ERROR, WARN, then PASS, SKIP"

        await pilot.press("f")
        assert {r.status for r in shown(app)} <= {Status.FAIL, Status.ERROR, Status.WARN}
        failing = len(shown(app))
        await pilot.press("f")
        assert len(shown(app)) == 92

        await pilot.press("c")  # first component present: kube-apiserver
        assert {r.check.component for r in shown(app)} == {"kube-apiserver"}
        await pilot.press("c")
        assert {r.check.component for r in shown(app)} == {"kube-controller-manager"}
        for _ in range(10):
            await pilot.press("c")
            if len(shown(app)) == 92:
                break
        assert len(shown(app)) == 92, "the component filter cycles back to all"

        await pilot.press("s")
        assert all(r.check.scored for r in shown(app))
        await pilot.press("s")

        await pilot.press("f", "slash", *"profiling")
        await pilot.pause()
        assert {r.id for r in shown(app)} == {"1.2.15", "1.3.2", "1.4.1"}
        assert "failing · search “profiling”" in screen_text(app).replace("\n", " ")
        await pilot.press("escape")
        assert len(shown(app)) == failing


async def test_search_matches_id_and_title(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"1.2.1")
        await pilot.pause()
        assert {r.id for r in shown(app)} >= {"1.2.1", "1.2.15", "1.2.19"}
        await pilot.press(*"5")
        await pilot.pause()
        assert [r.id for r in shown(app)] == ["1.2.15"]
        await pilot.press("enter")
        assert app.focused is app.screen.query_one(CheckTable)


async def test_space_selects_only_fixable_checks(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ChecksScreen)
        await select_checks(pilot, "1.2.15", "1.4.1")
        assert screen.selected == {"1.2.15", "1.4.1"}
        await select_checks(pilot, "1.2.20")  # manual: no mechanical fix
        assert "1.2.20" not in screen.selected
        assert any("no mechanical fix" in str(n.message) for n in app._notifications)
        await select_checks(pilot, "1.1.10")  # already passes
        assert "1.1.10" not in screen.selected
        await select_checks(pilot, "1.4.1")  # toggles off
        assert screen.selected == {"1.2.15"}
        assert "1 selected" in screen_text(app)


async def test_details_show_both_sources_fix_and_risks(make_app):
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"1.2.16", "enter")
        await pilot.pause()
        text = screen_text(app)
        for expected in ("expected", "file", "live process", "fix", "risk", "--audit-log-path"):
            assert expected in text


async def test_markup_like_text_is_rendered_literally(make_app, tree):
    manifest = tree / "etc/kubernetes/manifests/kube-apiserver.yaml"
    text = manifest.read_text()
    assert "--enable-admission-plugins=NodeRestriction" in text
    manifest.write_text(
        text.replace(
            "--enable-admission-plugins=NodeRestriction",
            "--enable-admission-plugins=[NodeRestriction],[b]bold[/b]",
        )
    )
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"DenyService", "enter")
        await pilot.pause()
        text = screen_text(app)
        assert "[NodeRestriction],[b]bold[/b]" in text
        await pilot.press("p")
        await settle(pilot)
        assert "[NodeRestriction]" in screen_text(app)  # in the diff


async def test_rescan_reads_the_node_again(make_app, tree):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        status = {r.id: r.status for r in shown(app)}
        assert status["4.1.9"] is Status.FAIL
        (tree / "var/lib/kubelet/config.yaml").chmod(0o600)
        await pilot.press("r")
        await settle(pilot)
        assert {r.id: r.status for r in shown(app)}["4.1.9"] is Status.PASS


async def test_a_first_scan_is_in_the_first_frame_at_full_width(make_app, offline_settings):
    from cis_tui.benchmarks.catalog import load_catalog
    from cis_tui.tui.app import scan_node

    first = scan_node(offline_settings, load_catalog())
    app = make_app(first_scan=first)
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.screen.query_one(CheckTable)
        # no scan worker: the rows were there when the screen was first laid out
        assert not app.workers._workers
        assert table.row_count == 92
        await pilot.pause()
        widths = [column.width for column in table.ordered_columns]
        # the title and found columns share the table's real width (a rebuild on resize
        # would mean the first frame was laid out too narrow)
        assert table._width == table.size.width
        assert sum(widths) + 2 * len(widths) <= table.size.width
        assert "1.1.1" in screen_text(app)

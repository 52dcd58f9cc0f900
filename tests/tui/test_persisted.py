"""The details pane says whether kubeadm upgrade keeps a pass (issue 14 item 4), once the
app has asked the node's API server (a real loopback HTTPS server), after the first frame."""

from __future__ import annotations

from cis_tui.layout import load_settings
from cis_tui.tui.widgets.check_table import CheckTable
from tests.fake_apiserver import FakeApiServer
from tests.persist.test_persist_apply import MANIFEST, node_config
from tests.tui.conftest import screen_text, settle, wait_until


async def test_a_pass_kubeadm_upgrade_reverts_says_so(make_app, tree, tmp_path):
    manifest = tree / MANIFEST
    manifest.write_text(
        manifest.read_text().replace(
            "    - --allow-privileged=true\n",
            "    - --allow-privileged=true\n    - --profiling=false\n",
        )
    )
    with FakeApiServer() as api:
        api.seed_reference("v1beta4.upstream-example")
        config = node_config(tmp_path / "cfg", tree, api.write_kubeconfig(tmp_path / "admin.conf"))
        app = make_app(load_settings(config=config))
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await wait_until(pilot, lambda: "1.2.15" in app.persisted, what="persisted known")
            assert app.persisted["1.2.15"] is False
            await pilot.press("slash", *"1.2.15", "enter")
            await pilot.pause()
            table = app.screen.query_one(CheckTable)
            assert table.current is not None and table.current.id == "1.2.15"
            text = " ".join(screen_text(app).split())
            assert "kubeadm upgrade will revert this" in text
            assert "cis-tui persist 1.2.15 keeps it" in text
            # the table marks it with a glyph (not a colour only), and the bar counts them
            rows = [line for line in screen_text(app).splitlines() if "PASS" in line]
            row = next(line for line in rows if " 1.2.15 " in line)
            assert "PASS ↺" in row, row
            reverted = sum(1 for kept in app.persisted.values() if kept is False)
            assert f"↺ {reverted} kubeadm upgrade reverts" in text


async def test_a_configmap_backup_is_named_diffed_and_restored_from_the_backups_screen(
    make_app, tree, tmp_path
):
    """The backup of kubeadm-config an apply made: its row names the ConfigMap, `d` diffs it
    against the live ConfigMap (asked off the UI thread), `r` puts it back without a restart."""
    from cis_tui.audit.node import take_snapshot
    from cis_tui.benchmarks.catalog import load_catalog
    from cis_tui.engine.transaction import Engine
    from cis_tui.persist.planner import attach_persistence
    from cis_tui.remediate.plan import build_plan
    from cis_tui.tui.screens.backups import BackupsScreen
    from cis_tui.tui.screens.confirm import ConfirmScreen
    from cis_tui.tui.widgets.diff_view import DiffView
    from tests.tui.conftest import press_into

    with FakeApiServer() as api:
        api.seed_reference("v1beta4.upstream-example")
        before = api.configmap("kubeadm-config")["data"]["ClusterConfiguration"]
        config = node_config(tmp_path / "cfg", tree, api.write_kubeconfig(tmp_path / "admin.conf"))
        settings = load_settings(config=config)
        catalog = load_catalog()
        plan = build_plan(catalog, take_snapshot(settings), ["1.2.15"])
        engine = Engine(settings, catalog, lambda event: None, health_gate=False)
        result = await engine.apply(attach_persistence(plan, settings))  # what `apply` does
        assert result.exit_code == 0, result
        app = make_app(settings)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press_into(pilot, "b", "BackupsScreen")
            screen = app.screen
            assert isinstance(screen, BackupsScreen)
            text = screen_text(app)
            assert "configmap kubeadm-config" in text, text
            table = screen.query_one("#backup-table")
            row = next(
                i for i in range(table.row_count) if "configmap" in str(table.get_row_at(i)[3])
            )
            table.move_cursor(row=row)
            await pilot.press("d")
            view = screen.query_one(DiffView)
            await wait_until(pilot, lambda: view.display, what="the ConfigMap diff")
            assert "+  - name: profiling" in view.diff
            await pilot.press("r")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="ask")
            assert "no restart" in " ".join(screen_text(app).split())
            await pilot.press("y")
            await wait_until(
                pilot,
                lambda: api.configmap("kubeadm-config")["data"]["ClusterConfiguration"] == before,
                what="the ConfigMap restored",
            )

"""The plan screen's pager at 80x24: a 40-check plan is reachable to its last line by keyboard;
files and hunks jump, files fold; parameters and the pager share tab; one path convention."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from textual import events
from textual.content import Content

from cis_tui.audit.evaluate import Status
from cis_tui.benchmarks.catalog import load_catalog
from cis_tui.layout import Layout, load_settings
from cis_tui.remediate.plan import FilePlan
from cis_tui.sandbox import create_sandbox
from cis_tui.tui.app import CisTuiApp, scan_node
from cis_tui.tui.display import NodePaths
from cis_tui.tui.filters import why_not_selectable
from cis_tui.tui.screens.confirm import ConfirmScreen
from cis_tui.tui.screens.help import HelpScreen
from cis_tui.tui.screens.plan import PlanScreen, ScreenPaths, file_section
from cis_tui.tui.widgets.diff_pager import DiffPager, RowKind, wrap_line
from cis_tui.tui.widgets.param_field import ParamField
from tests.tui.conftest import screen_text, settle, wait_until

SIZE = (80, 24)


@pytest.fixture
def demo_node(tmp_path) -> Path:
    """The insecure demo node's files (not started): it fails about 48 fixable checks."""
    directory = tmp_path / "sandbox"
    create_sandbox(directory, "insecure", reuse_keys=True)
    return directory


def demo_app(directory: Path) -> tuple[CisTuiApp, list[str], list[str]]:
    """The wizard as `cis-tui demo` opens it, 40 fixable checks and 3 that already pass."""
    settings = load_settings(config=directory / "cis-tui.toml")
    catalog = load_catalog(settings.benchmark)
    first = scan_node(settings, catalog)
    fixable = [r.id for r in first.results if why_not_selectable(r) is None][:40]
    passing = [r.id for r in first.results if r.status is Status.PASS][:3]
    assert len(fixable) == 40 and len(passing) == 3
    app = CisTuiApp(
        settings,
        catalog,
        first_scan=first,
        display_root=directory,
        health_gate=False,
        node_label="demo",
        clock=lambda: 0.0,
    )
    return app, fixable, passing


async def open_plan(pilot, ids: list[str]) -> PlanScreen:
    pilot.app.open_plan(ids)
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, PlanScreen) and screen.plan is not None
    return screen


def pager_title(pager: DiffPager) -> str:
    return Content.from_markup(pager.border_title or "").plain


async def test_every_line_of_a_40_check_plan_is_reachable_at_80x24(demo_node):
    app, fixable, passing = demo_app(demo_node)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_plan(pilot, fixable + passing)
        pager = screen.pager
        assert app.focused is pager and not pager.children  # one line-API widget
        files = len(screen.plan.files)
        assert files >= 5 and len(pager.sections) == files + 1  # + the not-planned list
        assert "Plan: fixes 40 checks in" in screen_text(app)
        assert "(3 not planned: at the end)" in screen_text(app)

        # page down to the end: every row the pager holds was on the screen at some point
        seen: list[str] = []
        for _ in range(200):
            seen.extend(screen_text(app).splitlines())
            if any(row.kind is RowKind.END for row in pager.visible_rows()):
                break
            await pilot.press("pagedown")
        else:
            raise AssertionError("pagedown never reached the end")
        text = "\n".join(seen)
        missing = [r.content.plain for r in pager.rows if r.content.plain.rstrip() not in text]
        assert missing == []
        for check_id in passing:
            assert f"{check_id}: already passes" in text
        assert "+    - --profiling=false" in text  # the apiserver's, controller's, scheduler's

        await pilot.press("g")
        assert pager.top == 0
        await pilot.press("G")
        last = screen_text(app)
        assert f"{passing[-1]}: already passes" in last and "(end)" in last
        await pilot.press("home", "space", "space", "b")
        assert pager.top == pager.page_height - 1


async def test_next_and_previous_file_and_hunk(demo_node):
    app, fixable, passing = demo_app(demo_node)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_plan(pilot, fixable + passing)
        pager = screen.pager
        total = len(pager.sections)
        for index in range(1, total):
            await pilot.press("right_square_bracket")
            assert pager.current_section() == index
            assert pager.visible_rows()[0].kind is RowKind.TITLE  # the file's title on top
            where = f" [{index + 1}/{total - 1}] /" if index < total - 1 else " Not planned"
            assert pager_title(pager).startswith(where)
        text = screen_text(app)
        assert "▾ Not planned (3)" in text and f"{passing[0]}: already passes" in text
        await pilot.press("right_square_bracket")  # past the last: stays
        assert pager.current_section() == total - 1

        await pilot.press("g", "n")
        first_hunk = pager.top
        assert pager.rows[first_hunk].kind is RowKind.HUNK
        lines = screen_text(app).splitlines()
        border = next(i for i, line in enumerate(lines) if line.startswith("─ "))
        assert lines[border].startswith(f"─ [2/{total - 1}] ")  # the first hunk is file 2's
        assert lines[border + 1].lstrip().startswith("@@ -")  # at the top of the pager
        await pilot.press("n")
        assert pager.top > first_hunk and pager.rows[pager.top].kind is RowKind.HUNK
        await pilot.press("N")
        assert pager.top == first_hunk
        await pilot.press("j", "j", "left_square_bracket")  # to the start of this file
        assert pager.rows[pager.top].kind is RowKind.TITLE
        assert pager.current_section() == 1
        await pilot.press("left_square_bracket")
        assert pager.top == 0


async def test_fold_a_file_and_all_files(demo_node):
    app, fixable, passing = demo_app(demo_node)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_plan(pilot, fixable + passing)
        pager = screen.pager
        apiserver = next(
            i for i, s in enumerate(pager.sections) if s.title.plain.endswith("apiserver.yaml")
        )
        while pager.current_section() != apiserver:
            await pilot.press("right_square_bracket")
        rows = len(pager.rows)
        diff_lines = len(pager.sections[apiserver].diff)
        await pilot.press("z")
        key = pager.sections[apiserver].key
        assert pager.is_folded(key)
        assert len(pager.rows) < rows - diff_lines
        text = screen_text(app)
        assert "▸ [" in text and "kube-apiserver.yaml" in text and "folded (z unfolds)" in text
        assert "· folded" in pager_title(pager)
        assert pager.current_section() == apiserver  # the folded file stays on top
        await pilot.press("right_square_bracket")  # the next file comes right after
        assert pager.current_section() == apiserver + 1
        await pilot.press("left_square_bracket", "z")
        assert not pager.is_folded(key) and len(pager.rows) == rows

        await pilot.press("Z")  # everything folded: every title fits on a screen or two
        assert all(pager.is_folded(s.key) for s in pager.sections)
        await pilot.press("g")
        await pilot.click(DiffPager, offset=(3, 1))  # a click on a title unfolds it
        assert not pager.is_folded(pager.sections[0].key)
        await pilot.press("Z")  # not all folded: fold all
        await pilot.press("Z")  # all folded: unfold all
        assert not any(pager.is_folded(s.key) for s in pager.sections)


async def test_folding_a_file_read_half_way_keeps_its_title_on_top(demo_node):
    """z in the middle of a file's diff: its title (▸, what it fixes) comes to the top of the
    view, not the blank row after it with the next file below and the title scrolled away."""
    app, fixable, _ = demo_app(demo_node)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_plan(pilot, fixable)
        pager = screen.pager
        apiserver = next(
            i for i, s in enumerate(pager.sections) if s.title.plain.endswith("apiserver.yaml")
        )
        while pager.current_section() != apiserver:
            await pilot.press("right_square_bracket")
        await pilot.press("n", "n")  # reading its second hunk
        assert pager.top > pager.rows.index(
            next(r for r in pager.rows if r.section == apiserver and r.kind is RowKind.TITLE)
        )
        await pilot.press("z")
        top = pager.visible_rows()[0]
        assert (top.section, top.kind) == (apiserver, RowKind.TITLE)
        assert "▸ [" in top.content.plain and "kube-apiserver.yaml" in screen_text(app)

        await pilot.press("z", "n", "n", "Z")  # fold all from half-way: the same
        top = pager.visible_rows()[0]
        assert (top.section, top.kind) == (apiserver, RowKind.TITLE)


async def test_confirming_a_40_check_plan_at_80x24_shows_the_buttons_and_scrolls(demo_node):
    """The confirmation lists every file with its checks: at 80x24 that is taller than the
    dialog, so the list scrolls and the buttons stay on screen."""
    app, fixable, _ = demo_app(demo_node)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_plan(pilot, fixable)
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await settle(pilot)
        last = " ".join(app.screen.body.plain.split()[-8:])  # its last words

        def words() -> str:  # the text inside the dialog's borders, its wrapping undone
            inside = [
                line[line.find("█") + 1 : line.rfind("█")] for line in screen_text(app).splitlines()
            ]
            return " ".join(re.sub(r"[▁▂▃▄▅▆▇]", " ", " ".join(inside)).split())

        text = words()
        assert "Apply this plan?" in text and "No (n)" in text and "Apply (y)" in text
        assert last not in text  # the end of the list is below: it scrolls
        scroll = app.screen.query_one("#confirm-scroll")
        assert scroll.has_focus
        await pilot.press("end")
        await pilot.pause()
        text = words()
        assert last in text and "Apply (y)" in text
        await pilot.press("n")
        assert isinstance(app.screen, PlanScreen)


async def test_mouse_wheel_scrolls_the_pager(demo_node):
    app, fixable, _ = demo_app(demo_node)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_plan(pilot, fixable)
        pager = screen.pager
        wheel = [events.MouseScrollDown]  # as the terminal reports a wheel turn
        await pilot._post_mouse_events(wheel, DiffPager, offset=(10, 5), times=3)
        assert pager.top > 0
        top = pager.top
        await pilot._post_mouse_events([events.MouseScrollUp], DiffPager, offset=(10, 5))
        assert pager.top < top


async def test_tab_moves_between_the_parameters_and_the_pager(demo_node):
    app, fixable, _ = demo_app(demo_node)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_plan(pilot, fixable)
        pager = screen.pager
        inputs = [f.input for f in screen.query(ParamField)]
        assert len(inputs) > 10  # all of them, also those mounted after the first frame
        order = []
        for _ in range(len(inputs) + 1):
            await pilot.press("tab")
            order.append(app.focused)
        assert order == [*inputs, pager]
        await pilot.press("shift+tab")
        assert app.focused is inputs[-1]
        await pilot.press("j", "end", "G")  # typed into the input, not paging the plan
        assert inputs[-1].value.endswith("jG")
        assert pager.top == 0
        await pilot.press("escape")
        assert app.focused is pager
        await pilot.press("e")
        assert app.focused is inputs[0]
        assert screen.query_one("#plan-params").region.height > 6  # room while editing


async def test_plan_keys_are_in_the_help_and_the_palette(demo_node):
    app, fixable, _ = demo_app(demo_node)
    async with app.run_test(size=(100, 80)) as pilot:
        await settle(pilot)
        screen = await open_plan(pilot, fixable[:3])
        titles = {c.title for c in app.get_system_commands(screen)}
        assert {"Next file", "Previous hunk", "Fold file", "Page down", "End"} <= titles
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for what in ("Next file", "Previous file", "Next hunk", "Fold all", "Scroll down"):
            assert what in text


async def test_demo_paths_one_convention(demo_node):
    """Parameters show node paths like the rest of the screen; a typed node path is planned
    inside the sandbox, never on the host."""
    app, _, _ = demo_app(demo_node)
    sandbox = str(demo_node)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = await open_plan(pilot, ["1.2.5"])  # --kubelet-certificate-authority
        (field,) = screen.query(ParamField)
        assert field.input.value == "/etc/kubernetes/pki/ca.crt"
        assert sandbox not in screen_text(app)
        pki = demo_node / "etc/kubernetes/pki"  # plans name only files the node has
        (pki / "other-ca.crt").write_bytes((pki / "ca.crt").read_bytes())
        field.input.value = "/etc/kubernetes/pki/other-ca.crt"
        await pilot.pause()

        def planned() -> str:
            return screen.plan.files[0].new_text or "" if screen.plan else ""

        await wait_until(pilot, lambda: "other-ca.crt" in planned(), what="the replan")
        await settle(pilot)
        assert f"--kubelet-certificate-authority={sandbox}/etc/kubernetes/pki/other-ca.crt" in (
            planned()
        )
        text = screen_text(app)
        assert "--kubelet-certificate-authority=/etc/kubernetes/pki/other-ca.crt" in text
        assert sandbox not in text and "outside the sandbox" not in text


def test_a_changed_line_that_points_at_the_host_says_so(tmp_path):
    sandbox = tmp_path / "sandbox"
    paths = ScreenPaths(NodePaths(sandbox), Layout())
    assert paths.typed("/etc/kubernetes/pki/ca.crt") == f"{sandbox}/etc/kubernetes/pki/ca.crt"
    assert paths.typed("/../../etc/passwd") == f"{sandbox}/etc/passwd"  # cannot climb out
    assert paths.typed(f"{sandbox}/etc/x") == f"{sandbox}/etc/x"
    assert paths.typed("relative/x") == "relative/x"
    manifest = sandbox / "etc/kubernetes/manifests/kube-apiserver.yaml"
    old = f"spec:\n- --client-ca-file={sandbox}/etc/kubernetes/pki/ca.crt\n"
    new = (
        f"spec:\n- --client-ca-file={sandbox}/etc/kubernetes/pki/ca.crt\n"
        "- --kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt\n"
        "- --etcd-servers=https://127.0.0.1:2379/x\n"
        "- --enable-admission-plugins=[NodeRestriction]\n"
    )
    file = FilePlan("manifest", "kube-apiserver", manifest, old, new, ("1.2.5",))
    section = file_section(file, paths, 1, 1)
    lines = [line.plain for line in section.diff]
    assert section.title.plain == "[1/1] /etc/kubernetes/manifests/kube-apiserver.yaml"
    assert (
        "+- --kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt"
        "  ⚠ outside the sandbox: this host's own file"
    ) in lines
    assert "+- --etcd-servers=https://127.0.0.1:2379/x" in lines  # a URL is not a file
    assert "+- --enable-admission-plugins=[NodeRestriction]" in lines  # text, never markup
    assert " - --client-ca-file=/etc/kubernetes/pki/ca.crt" in lines  # inside: node path
    # on a live node or a --root tree nothing is marked: files name node paths there
    live = ScreenPaths(NodePaths(Path("/")), Layout())
    assert not any("⚠" in line.plain for line in file_section(file, live, 1, 1).diff)


def test_long_lines_wrap_without_losing_a_character():
    line = Content("+    - --tls-cipher-suites=" + ",".join(f"TLS_SUITE_{n}" for n in range(20)))
    rows = wrap_line(line, 40, words=False)
    assert len(rows) > 1 and all(r.cell_length <= 40 for r in rows)
    assert rows[0].plain + "".join(r.plain[1:] for r in rows[1:]) == line.plain
    assert all(r.plain.startswith("↪") for r in rows[1:])
    prose = Content("risk  " + "word " * 30)
    wrapped = wrap_line(prose, 30, indent=6)
    assert all(r.plain.startswith("      ") for r in wrapped[1:])
    assert " ".join(r.plain.strip() for r in wrapped) == prose.plain.strip()


def test_plan_pager_snapshot(snap_compare, make_app):
    """Four checks and one that passes at 80x24, the second file jumped to."""

    async def run_before(pilot):
        await settle(pilot)
        pilot.app.open_plan(["1.1.1", "1.2.15", "1.2.17", "1.3.2", "1.4.1"])
        await settle(pilot)
        await pilot.press("right_square_bracket", "n")
        await pilot.pause()

    assert snap_compare(make_app(), run_before=run_before, terminal_size=SIZE)


async def test_patches_mode_shows_the_patch_file_and_the_upgrade_hint(demo_node):
    """`[persist] mode = "patches"`: the pager holds cis-tui's patch file next to the manifest,
    and the summary says that every kubeadm upgrade needs --patches."""
    config = demo_node / "cis-tui.toml"
    config.write_text(config.read_text().replace("[persist]\n", '[persist]\nmode = "patches"\n'))
    app, fixable, _ = demo_app(demo_node)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = await open_plan(pilot, fixable)
        await wait_until(pilot, lambda: not screen.persisting, what="persistence decided")
        patch = "kubeletconfiguration~cis-tui+strategic.yaml"
        assert any(patch in (file.diff or "") for file in screen.plan.files), (
            screen.plan.persistence
        )
        text = " ".join(screen_text(app).split())
        assert "Persisted in kubeadm patch files: run every kubeadm upgrade with --patches" in text
        pager = screen.query_one(DiffPager)
        shown = [line.plain for section in pager.sections for line in section.diff]
        assert any(line.startswith("+++ ") and patch in line for line in shown)

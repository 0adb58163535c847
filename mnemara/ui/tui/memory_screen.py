"""The memory browser (`/memory`, Ctrl+O): what mnemara remembers, on one screen.

Tabs list the notes (by day, newest first), the wiki pages, the slots, the archive and the recent
recalls; the search box runs the hybrid retrieval recall uses, in a worker thread (the first
search may open the index: the screen says so and stays live), and lists each hit's kind,
source, time, score and the signals that matched. Enter opens an entry in full (inert: text from
the store never drives the terminal); from there `p` pins an archived turn back into the window,
`e` edits a wiki page (saved through the wiki writer, so it is re-indexed) and `s` supersedes a
note (the correction path of the model's update_memory). Esc closes.

The data side, shared with the REPL's `/memory`, is `ops/memory_browser.py`.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Iterable

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import (Button, DataTable, Footer, Input, Static, TabbedContent, TabPane,
                             Tabs, TextArea)

from ...errors import MnemaraError
from ...ops import memory_browser as browser
from ...ops.memory_browser import TAB_TITLES, Entry, Found
from ...termsafe import INLINE, inert, one_line

if TYPE_CHECKING:
    from ...engine.turn import TurnEngine

TAB_ORDER = (*browser.TABS, "search")
# Each tab's columns, (label, width); None is the one that takes the width left over.
COLUMNS: dict[str, tuple[tuple[str, int | None], ...]] = {
    "notes": (("day", 10), ("time", 5), ("category", 10), ("note", None)),
    "wiki": (("page", 20), ("title", None), ("updated", 11)),
    "slots": (("slot", 16), ("chars", 6), ("updated", 11), ("text", None)),
    "archive": (("turn", 6), ("role", 9), ("time", 11), ("reason", 10), ("text", None)),
    "recalls": (("turn", 6), ("time", 11), ("recalled", None)),
    "search": (("memory", 20), ("time", 11), ("score", 5), ("signals", 11), ("text", None)),
}
EMPTY = {"notes": "No memory notes yet: /note TEXT writes one (the model uses write_memory).",
         "wiki": "No wiki pages yet: the model writes them with wiki_write.",
         "slots": "No slots yet: /slot NAME TEXT sets one (the model uses slot_set).",
         "archive": "The archive is empty: turns move there when the window is full.",
         "recalls": "Nothing recalled yet: recall brings back memories that left the window.",
         "search": "Type in the search box and press Enter: hybrid retrieval, as recall runs it."}
HINT = "⏎ open · ⇥ next tab · / search · Esc close"

# Memory services that have answered a search in this process: the index is open, no "loading".
_warm: "weakref.WeakSet[Any]" = weakref.WeakSet()


def open_memory(app: Any, data: dict[str, Any]) -> None:
    """Open the browser over the chat (from `/memory`'s outcome); the status bar is refreshed
    when it closes (a turn pinned back changes the window's figures)."""
    if isinstance(app.screen, MemoryScreen):
        return
    app.push_screen(MemoryScreen(app.engine, query=data.get("query") or "", found=data.get("found")),
                    lambda _: app.refresh_status())


def _when(iso: str, with_date: bool = True) -> str:
    """`05-01 10:14` (or `10:14`) from an ISO UTC stamp; the raw text if it is not one."""
    text = iso.replace("T", " ").rstrip("Z")
    return (text[5:16] if with_date else text[11:16]) if len(text) >= 16 else text


class MemoryScreen(ModalScreen[None]):
    """Tabs of what is remembered, a search box, Enter opens an entry."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("tab", "switch(1)", "Next tab", key_display="⇥", priority=True),
        Binding("shift+tab", "switch(-1)", "Previous tab", show=False, priority=True),
        Binding("slash", "focus_search", "Search", key_display="/"),
        Binding("enter", "open", "Open", key_display="⏎"),
        Binding("down", "focus_table", "To the list", show=False),
    ]
    DEFAULT_CSS = """
    MemoryScreen { align: center middle; }
    #memory-panel { width: 100%; height: 1fr; border: round $accent; border-title-style: bold;
                    background: $surface; }
    #memory-search { height: 1; border: none; padding: 0 1; background: $boost; }
    #memory-search:focus { background: $boost-lighten-1; }
    #memory-tabs { height: 1fr; }
    #memory-tabs TabPane { padding: 0; }
    #memory-tabs DataTable { height: 1fr; }
    #memory-message { height: 1; padding: 0 1; color: $success; text-wrap: nowrap;
                      text-overflow: ellipsis; }
    #memory-message.-error { color: $error; }
    #memory-message.-hint { color: $text-muted; }
    """

    def __init__(self, engine: "TurnEngine", *, query: str = "", found: Found | None = None) -> None:
        super().__init__(classes="memory-screen")
        self.engine = engine
        self.entries: dict[str, list[Entry]] = {tab: [] for tab in TAB_ORDER}
        self.initial_query = query
        self.found = found

    # --- layout ----------------------------------------------------------------------------------
    def compose(self) -> Iterable[Widget]:
        with Vertical(id="memory-panel") as panel:
            panel.border_title = Text(f"Memory · {inert(self.engine.instance.name, INLINE)}")
            yield Input(self.initial_query, id="memory-search",
                        placeholder="/ search memory (as recall does) · Enter runs it")
            with TabbedContent(id="memory-tabs"):
                for tab in TAB_ORDER:
                    with TabPane(TAB_TITLES[tab], id=f"tab-{tab}"):
                        yield DataTable(id=f"table-{tab}", cursor_type="row", zebra_stripes=True)
            yield Static(id="memory-message")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Tabs).can_focus = False  # Tab switches tabs; focus stays in a list
        problem = self.reload()
        if self.found is not None:
            self.show_found(self.found)
        else:
            self.activate("notes")
        if problem:
            self.say(problem, "error")

    def on_resize(self) -> None:
        for tab in TAB_ORDER:
            self.fill(tab)

    # --- data ------------------------------------------------------------------------------------
    def reload(self) -> str | None:
        """Re-read every listing (after a change, or on open); the search results stay. Returns
        the one line saying why a listing could not be read (it stays empty), if one could not."""
        engine = self.engine
        tabbed = self.query_one(TabbedContent)
        try:
            counts = browser.counts(engine.instance, engine.store, engine.config)
        except MnemaraError as exc:
            return str(exc)
        problem = None
        for tab in browser.TABS:
            try:
                self.entries[tab] = browser.listing(tab, engine.instance, engine.store, engine.config)
            except MnemaraError as exc:
                self.entries[tab], problem = [], str(exc)
            tabbed.get_tab(f"tab-{tab}").label = f"{TAB_TITLES[tab]} {browser.count_text(tab, counts[tab])}"
            self.fill(tab)
        return problem

    def fill(self, tab: str) -> None:
        """Lay out `tab`'s table for the current width (columns cut with an ellipsis)."""
        table = self.query_one(f"#table-{tab}", DataTable)
        row = table.cursor_row
        table.clear(columns=True)
        columns = COLUMNS[tab]
        fixed = sum(w or 0 for _, w in columns) + 2 * len(columns) + 3  # padding, border, scrollbar
        rest = max(12, (self.size.width or 80) - fixed)
        widths = [w or rest for _, w in columns]
        for (label, _), width in zip(columns, widths):
            table.add_column(label, key=label, width=width)
        previous_day = None
        for n, entry in enumerate(self.entries[tab]):
            cells = self.cells(tab, entry, previous_day)
            previous_day = entry.day
            style = "dim strike" if entry.superseded else ""
            # Only the start of a long text is looked at: a row shows a few dozen characters.
            table.add_row(*(Text(one_line(c[:4 * w + 200], w), style=style, no_wrap=True)
                            for c, w in zip(cells, widths)), key=str(n))
        if self.entries[tab]:
            table.move_cursor(row=min(max(row, 0), len(self.entries[tab]) - 1), animate=False)

    @staticmethod
    def cells(tab: str, e: Entry, previous_day: str | None) -> tuple[str, ...]:
        if tab == "notes":
            return (e.day if e.day != previous_day else "", _when(e.time, False), e.label, e.text)
        if tab == "wiki":
            return (e.slug or "", e.label, _when(e.time))
        if tab == "slots":
            return (e.label, f"{len(e.text):,}", _when(e.time), e.text)
        if tab == "archive":
            reason = e.source.removeprefix("archive (").removesuffix(")")
            return (f"#{e.turn_id}", _role(e.label), _when(e.time), reason, e.text)
        if tab == "recalls":
            return (f"#{e.turn_id}", _when(e.time), e.label)
        return (f"{e.kind} {e.source}", _when(e.time), f"{e.score or 0:.2f}",
                e.signals_line(short=True), e.text)

    # --- tabs and focus ------------------------------------------------------------------------------
    @property
    def active(self) -> str:
        return (self.query_one(TabbedContent).active or "tab-notes").removeprefix("tab-")

    def activate(self, tab: str) -> None:
        self.query_one(TabbedContent).active = f"tab-{tab}"
        self.query_one(f"#table-{tab}", DataTable).focus()
        self.say(EMPTY[tab] if not self.entries[tab] else self.describe(tab), "hint")

    def describe(self, tab: str) -> str:
        n = len(self.entries[tab])
        if tab == "archive" and n >= browser.ARCHIVE_SHOWN:
            return f"the newest {n} archived turns; search reaches the rest · {HINT}"
        return HINT

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        tab = (event.pane.id or "tab-notes").removeprefix("tab-")
        if not self.query_one("#memory-search", Input).has_focus:
            self.query_one(f"#table-{tab}", DataTable).focus()

    def action_switch(self, step: int) -> None:
        index = TAB_ORDER.index(self.active)
        self.activate(TAB_ORDER[(index + step) % len(TAB_ORDER)])

    def action_focus_search(self) -> None:
        self.query_one("#memory-search", Input).focus()

    def action_focus_table(self) -> None:
        self.query_one(f"#table-{self.active}", DataTable).focus()

    def action_close(self) -> None:
        self.dismiss(None)

    def say(self, text: str, kind: str = "info") -> None:
        message = self.query_one("#memory-message", Static)
        for k in ("hint", "error"):
            message.set_class(kind == k, f"-{k}")
        message.update(Text(one_line(text, 500)))

    # --- search ----------------------------------------------------------------------------------
    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        query = event.value.strip()
        if not query:
            self.say("type something to search for", "error")
            return
        service = self.engine.memory
        loading = "" if service in _warm else " (the first search may open the memory index: a few seconds)"
        self.say(f"searching memory for {query!r}…{loading}", "hint")
        self.run_worker(self._search(query), group="memory-search", exclusive=True, exit_on_error=False)

    async def _search(self, query: str) -> None:
        service = self.engine.memory
        try:
            found = await asyncio.to_thread(browser.search, service, query)
        except MnemaraError as exc:
            self.say(f"memory search: {exc}", "error")
            return
        except Exception as exc:  # noqa: BLE001 - a bug in retrieval must not leave "searching…" up
            self.say(f"memory search failed: {type(exc).__name__}: {exc}", "error")
            return
        _warm.add(service)
        self.show_found(found)

    def show_found(self, found: Found) -> None:
        self.found = found
        self.entries["search"] = found.hits
        n = len(found.hits)
        self.query_one(TabbedContent).get_tab("tab-search").label = f"Search {n}"
        self.fill("search")
        self.activate("search")
        if n:
            self.say(f"{n} hit{'s' if n != 1 else ''} for {found.query!r} ({found.how()}) · ⏎ opens one")
        else:
            self.say(f"nothing matches {found.query!r} ({found.how()})", "error")

    # --- open ------------------------------------------------------------------------------------
    def selected(self) -> Entry | None:
        tab = self.active
        row = self.query_one(f"#table-{tab}", DataTable).cursor_row
        entries = self.entries[tab]
        return entries[row] if entries and 0 <= row < len(entries) else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()  # Enter on a row: the table's own binding gets the key first
        self.action_open()

    def action_open(self) -> None:
        if self.query_one("#memory-search", Input).has_focus:
            return
        entry = self.selected()
        if entry is not None:
            self.app.push_screen(MemoryItemScreen(self, entry))


class MemoryItemScreen(ModalScreen[None]):
    """One entry in full; p / e / s act on it where they apply; Esc goes back to the list."""

    BINDINGS = [
        Binding("escape", "close", "Back"),
        Binding("p", "pin", "Pin into window"),
        Binding("e", "edit", "Edit page"),
        Binding("s", "supersede", "Supersede"),
    ]
    DEFAULT_CSS = """
    MemoryItemScreen { align: center middle; }
    #item-panel { width: 100%; height: 1fr; border: round $accent; border-title-style: bold;
                  background: $surface; }
    #item-meta { padding: 0 1; color: $text-muted; text-wrap: nowrap; text-overflow: ellipsis; }
    #item-scroll { height: 1fr; padding: 0 1; }
    #item-message { height: auto; max-height: 3; padding: 0 1; color: $success; }
    #item-message.-error { color: $error; }
    """

    def __init__(self, browser_screen: MemoryScreen, entry: Entry) -> None:
        super().__init__(classes="memory-item-screen")
        self.browser = browser_screen
        self.engine = browser_screen.engine
        self.entry = entry

    def compose(self) -> Iterable[Widget]:
        with Vertical(id="item-panel") as panel:
            panel.border_title = Text(one_line(self.title_line(), 70))
            yield Static(id="item-meta")
            with VerticalScroll(id="item-scroll"):
                yield Static(id="item-text")
            yield Static(id="item-message")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#item-message").display = False
        self.refresh_item()

    # --- what is shown ---------------------------------------------------------------------------
    @property
    def place(self) -> str | None:
        """"window" | "archive" for a turn (it may have moved since the list was read)."""
        if self.entry.kind != "turn" or self.entry.turn_id is None:
            return None
        return browser.where_turn(self.engine.store, self.entry.turn_id)

    def title_line(self) -> str:
        e = self.entry
        if e.kind == "turn":
            return f"Turn #{e.turn_id} · {_role(e.label)}"
        if e.kind == "wiki":
            return f"Wiki · {e.slug}"
        if e.kind == "recall":
            return f"Recalled into turn #{e.turn_id}"
        if e.kind == "slot":
            return f"Slot · {e.label}"
        return f"{e.kind.capitalize()} · {e.source}"

    def meta_line(self) -> str:
        e = self.entry
        parts = [e.id, e.time.replace("T", " ").replace("Z", " UTC")]
        if e.kind == "turn":
            parts.append(f"in the {self.place or 'store no more'}")
        elif e.label and e.kind not in ("wiki", "slot", "recall"):
            parts.append(e.label)
        if e.score is not None:
            parts.append(f"score {e.score:.2f} · {e.signals_line()}")
        if e.superseded:
            parts.append("superseded")
        return " · ".join(parts)

    def refresh_item(self) -> None:
        width = max(40, (self.size.width or 80) - 6)
        text = browser.full_text(self.engine.instance, self.engine.store, self.entry, width)
        self.query_one("#item-meta", Static).update(Text(one_line(self.meta_line(), 500)))
        self.query_one("#item-text", Static).update(Text(inert(text)))
        self.refresh_bindings()

    def say(self, text: str, kind: str = "info") -> None:
        message = self.query_one("#item-message", Static)
        message.set_class(kind == "error", "-error")
        message.update(Text(inert(text)))
        message.display = True

    # --- actions ---------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        e = self.entry
        if action == "pin":
            return self.place == "archive"
        if action == "edit":
            return e.kind == "wiki" and bool(e.slug)
        if action == "supersede":
            return e.kind == "note" and not e.superseded
        return True

    def action_close(self) -> None:
        self.dismiss(None)

    def action_pin(self) -> None:
        """Bring the archived turn back into the window, pinned (ops/unarchive.py)."""
        from ...ops.unarchive import unarchive
        if self.engine.busy:
            self.say("a turn is running: pin it back when the turn is over", "error")
            return
        try:
            text = unarchive(self.engine.store, self.engine.config, self.entry.turn_id or 0,
                             system_tokens=self.engine.tools.system_prompt_tokens)
        except MnemaraError as exc:
            self.say(str(exc), "error")
            return
        self.say(text)
        self.changed()
        if hasattr(self.app, "add_notice"):
            self.app.run_worker(self.app.add_notice("info", text), exit_on_error=False)

    def action_edit(self) -> None:
        """The wiki page in an editor; Save writes it through the wiki writer (re-indexed)."""
        slug = self.entry.slug or ""
        text = browser.full_text(self.engine.instance, self.engine.store, self.entry)

        def closed(result: tuple[str, str] | None) -> None:
            if result is None:
                self.say(f"wiki page {slug} not changed (cancelled)")
                return
            try:
                self.say(browser.save_wiki(self.engine.instance, self.engine.store,
                                           self.engine.config, slug, result[0]))
            except MnemaraError as exc:
                self.say(str(exc), "error")
                return
            self.changed()

        self.app.push_screen(MemoryEditorScreen(
            f"Wiki · {slug}", "Saved through the wiki: re-indexed by section, so search and "
            "recall find it.", text), closed)

    def action_supersede(self) -> None:
        """A correction of the note; the old one is kept, marked superseded, never recalled."""
        entry = self.entry

        def closed(result: tuple[str, str] | None) -> None:
            if result is None:
                self.say("note not changed (cancelled)")
                return
            try:
                self.say(browser.supersede_note(self.engine.instance, self.engine.store,
                                                self.engine.config, entry.id, *result))
            except MnemaraError as exc:
                self.say(str(exc), "error")
                return
            self.entry = replace(entry, superseded=True)
            self.changed()

        self.app.push_screen(MemoryEditorScreen(
            f"Supersede · {entry.source}", "Write the corrected note: it is saved as a new note; "
            "the old one is kept, marked superseded and no longer recalled.",
            browser.full_text(self.engine.instance, self.engine.store, entry), with_reason=True),
            closed)

    def changed(self) -> None:
        """After a change: this entry, the lists behind it, and the index (in the background)."""
        self.refresh_item()
        self.browser.reload()
        drain = getattr(self.engine, "drain_in_background", None)
        refresh = getattr(self.app, "refresh_status", None)
        if drain is not None:
            drain(refresh)


class MemoryEditorScreen(ModalScreen["tuple[str, str] | None"]):
    """Edit a text (a wiki page, a note's correction); Ctrl+S saves, Esc cancels. Dismissed with
    (text, reason) or None; the caller writes it."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("escape", "cancel", "Cancel", priority=True),  # before the text area takes it
    ]
    DEFAULT_CSS = """
    MemoryEditorScreen { align: center middle; }
    #editor-panel { width: 100%; height: 100%; border: round $accent; border-title-style: bold;
                    background: $surface; }
    #editor-text { height: 1fr; border: none; }
    #editor-help { padding: 0 1; color: $text-muted; }
    #editor-reason { height: 1; border: none; padding: 0 1; background: $boost; }
    #editor-buttons { height: auto; align-horizontal: right; }
    #editor-buttons Button { margin: 0 1; min-width: 12; }
    """

    def __init__(self, title: str, help: str, text: str, *, with_reason: bool = False) -> None:
        super().__init__(classes="memory-editor-screen")
        self.title_text, self.help_text, self.original = title, help, text
        self.with_reason = with_reason

    def compose(self) -> Iterable[Widget]:
        with Vertical(id="editor-panel") as panel:
            panel.border_title = Text(one_line(self.title_text, 70))
            yield Static(Text(self.help_text), id="editor-help")
            yield TextArea(self.original, id="editor-text", soft_wrap=True, show_line_numbers=False,
                           tab_behavior="indent")
            if self.with_reason:
                yield Input(id="editor-reason", placeholder="why the old note was wrong (optional)")
            with Horizontal(id="editor-buttons"):
                yield Button("Save ^s", id="editor-save", variant="primary")
                yield Button("Cancel Esc", id="editor-cancel")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#editor-text", TextArea).focus()

    def action_save(self) -> None:
        reason = self.query_one("#editor-reason", Input).value if self.with_reason else ""
        self.dismiss((self.query_one("#editor-text", TextArea).text, reason))

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "editor-save":
            self.action_save()
        else:
            self.action_cancel()


def _role(role: str) -> str:
    from ...views import ROLE_LABEL
    return ROLE_LABEL.get(role, role)

"""/proposals in the TUI: a review screen, the proposal beside the atoms it came from.

The list of pending proposals runs across the top; under it, the chosen proposal (title,
rationale, the text it would write) on the left and its source atoms (id, where, when, excerpt)
on the right, so a draft is judged against what it was drawn from. One key decides: `a` accepts
(a wiki page is written and indexed at once; a role amendment opens a dialog showing the text
and the role doc it goes into, appended only on `y`), `r` rejects. Esc closes; what was decided
is then listed in the chat. All text is made inert (`termsafe.inert`) before it is drawn.

The decisions go through `ui/proposals_command.accept` and `ops.proposals.reject`: the same path
`/proposals accept ID` and `mnemara proposals` take.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ...termsafe import inert, one_line
from .yesno import YesNoScreen

if TYPE_CHECKING:
    from ...engine.turn import TurnEngine
    from ...replay.proposals import Proposal


class ProposalReviewScreen(ModalScreen[list[str]]):
    """Pending proposals, one decided per key press; dismissed with what was decided."""

    BINDINGS = [
        Binding("a", "accept", "Accept"),
        Binding("r", "reject", "Reject"),
        Binding("escape", "close", "Close"),
    ]
    DEFAULT_CSS = """
    ProposalReviewScreen { align: center middle; }
    #review { width: 100%; height: 100%; border: heavy $accent; border-title-style: bold;
              background: $surface; padding: 0 0; }
    #review-list { height: auto; max-height: 6; border: none; margin: 0 0 1 0; }
    #review-panes { height: 1fr; }
    #review-proposal, #review-sources { width: 1fr; padding: 0 1; }
    #review-sources { border-left: solid $accent-darken-1; }
    #review-status { height: 1; color: $text-muted; padding: 0 1; }
    #review-help { height: 1; color: $text-muted; padding: 0 1; }
    """

    def __init__(self, engine: "TurnEngine", proposals: list["Proposal"]) -> None:
        super().__init__(classes="proposals-screen")
        self.engine = engine
        self.proposals = list(proposals)
        self.decided: list[str] = []

    def compose(self) -> Iterable[Widget]:
        with Vertical(id="review") as box:
            box.border_title = Text(self._title())
            yield OptionList(*self._options(), id="review-list")
            with Horizontal(id="review-panes"):
                with VerticalScroll(id="review-proposal"):
                    yield Static(id="review-proposal-text")
                with VerticalScroll(id="review-sources"):
                    yield Static(id="review-sources-text")
            yield Static(id="review-status")
            yield Static(Text("a accept · r reject · ↑↓ choose · Esc close"), id="review-help")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.focus()
        if self.proposals:
            options.highlighted = 0
        self._show()

    # --- what is drawn -------------------------------------------------------------------------
    def _title(self) -> str:
        n = len(self.proposals)
        return f"Proposals · {n} pending" if n else "Proposals · none pending"

    def _options(self) -> list[Option]:
        return [Option(Text(one_line(f"{p.id}  {p.kind:<4}  {p.target or 'role doc'}  {p.title}",
                                     200)), id=p.id) for p in self.proposals]

    @property
    def current(self) -> "Proposal | None":
        index = self.query_one(OptionList).highlighted
        if index is None or not 0 <= index < len(self.proposals):
            return None
        return self.proposals[index]

    def _show(self) -> None:
        p = self.current
        left, right = self.query_one("#review-proposal-text", Static), \
            self.query_one("#review-sources-text", Static)
        if p is None:
            left.update(Text("Nothing left to review."))
            right.update(Text(""))
            return
        where = f"wiki/{p.target}.md" if p.kind == "wiki" else "the role doc"
        head = Text()
        head.append(inert(p.title) + "\n", style="bold")
        head.append(f"{p.kind} → {where} · {p.origin} · {p.created_at}\n", style="dim")
        head.append(inert(p.rationale) + "\n\n", style="italic")
        head.append(inert(p.body.rstrip("\n")))
        left.update(head)
        side = Text()
        side.append(f"Sources ({len(p.sources)})\n", style="bold")
        for s in p.sources:
            side.append(f"\n{inert(s.atom_id)}\n", style="bold")
            side.append(f"{inert(s.where)} · {inert(s.created_at)}\n", style="dim")
            side.append(inert(" ".join(s.excerpt.split())) + "\n")
        if not p.sources:
            side.append("\n(none recorded)")
        right.update(side)
        for pane in ("#review-proposal", "#review-sources"):
            self.query_one(pane, VerticalScroll).scroll_home(animate=False)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show()

    def _say(self, text: str) -> None:
        self.query_one("#review-status", Static).update(Text(one_line(text, 300)))

    def _done(self, p: "Proposal", message: str) -> None:
        """`p` is decided: off the list, the next one shown, the outcome said."""
        self.decided.append(message)
        index = self.proposals.index(p)
        self.proposals.remove(p)
        options = self.query_one(OptionList)
        options.remove_option_at_index(index)
        if self.proposals:
            options.highlighted = min(index, len(self.proposals) - 1)
        self.query_one("#review", Vertical).border_title = Text(self._title())
        self._show()
        self._say(message)

    # --- decisions -----------------------------------------------------------------------------
    def action_accept(self) -> None:
        from ..proposals_command import accept
        p = self.current
        if p is None:
            return
        if p.kind == "role":
            from ...ops.role import role_path
            path, _ = role_path(self.engine.instance, self.engine.config)

            def answered(yes: bool | None) -> None:
                if yes:
                    self._decide(p, lambda: accept(self.engine, p.id, confirmed=True))
                else:
                    self._say(f"{p.id} not applied; it is still pending")

            self.app.push_screen(AmendmentConfirm(p, str(path)), answered)
            return
        self._decide(p, lambda: accept(self.engine, p.id, confirmed=False))

    def action_reject(self) -> None:
        from ...errors import MnemaraError
        from ...ops.proposals import reject
        p = self.current
        if p is None:
            return
        try:
            reject(self.engine.instance, p.id)
        except MnemaraError as exc:
            self._say(str(exc))
            return
        self._done(p, f"rejected {p.id}; replay will not propose it again")

    def _decide(self, p: "Proposal", run: Any) -> None:
        outcome = run()
        if outcome.kind == "error":
            self._say(outcome.text)
        else:
            self._done(p, outcome.text)

    def action_close(self) -> None:
        self.dismiss(self.decided)


class AmendmentConfirm(YesNoScreen):
    """Append this amendment to the role doc? `y` appends, `n` or Esc leaves everything as is."""

    DEFAULT_CSS = """
    AmendmentConfirm #yesno-dialog { max-width: 90; border: heavy $warning; }
    AmendmentConfirm #yesno-body { max-height: 50vh; }
    """

    def __init__(self, proposal: "Proposal", role_doc: str) -> None:
        super().__init__(title=f"Append amendment {proposal.id} to the role doc?",
                         body=proposal.body.rstrip("\n"), above=one_line(role_doc, 200),
                         yes="Append", no="Cancel",
                         help="y append (a dated backup of the role doc is kept) · n / Esc cancel",
                         classes="amendment-confirm")
        self.proposal = proposal
        self.role_doc = role_doc


def open_review(app: Any, proposals: list["Proposal"]) -> None:
    """Open the review over the chat; on close, what was decided is listed in the chat."""
    from .chat import CommandOutput
    from .widgets import PromptInput

    async def closed(decided: list[str] | None) -> None:
        if decided:
            await app.add(CommandOutput("\n".join(decided)))
        app.refresh_header()
        app.refresh_status()
        app.query_one(PromptInput).focus()

    app.push_screen(ProposalReviewScreen(app.engine, proposals), closed)

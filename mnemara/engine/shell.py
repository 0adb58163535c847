"""Bash commands, parsed: the simple commands a permission pattern must approve, and what no
pattern may approve.

Why this exists: patterns used to be searched in the whole command string, so `^ls( |$)` let
`ls x && touch y` and `ls $(touch y)` run without asking. A command is now parsed with
tree-sitter-bash (imported on the first Bash decision, never at start-up) and reduced to

- `commands`: the text of every simple command it runs, in source order, including those inside
  `&&` / `||` / `;` / `|` chains, newlines, `( )` subshells, `{ }` groups, if / while / until /
  for bodies and the literal string of `bash -c '...'` / `eval '...'`. Each text is the command
  name after unquoting (`l's'`, `"ls"`, `\\ls` and `$'ls'` are all `ls`), then the arguments as
  written, one space apart; leading `NAME=value` assignments and input redirections (`< file`,
  `<<EOF`, `<<< word`) are part of it; redirections that only discard or merge output
  (`>/dev/null`, `2>&1`, `2>&-`) are left out.
- `problems`: constructs that run or write something no per-command pattern can vouch for:
  command or process substitution (also inside double quotes, assignments and unquoted
  here-document bodies), `&` backgrounding, output redirection to a file, a shell run on a
  script or stdin (its code is not on the command line), `eval` or `sh -c` of a non-literal
  string, a command name built from an expansion or a glob, function definitions, `[[ ]]`,
  arithmetic, `case`, parameter expansions other than `$NAME` / `${NAME}`, control characters,
  and anything the parser reports as an error or this module does not know.

Where tree-sitter-bash is known to read a line differently from bash, the line is a problem
too: a here-document whose end marker is not a line of its own (the parser ends `<<EOF` at
`EOF | cat`, bash reads on and runs `$(...)` below it), backticks in an unquoted here-document
body (the parser leaves them as text), and a bare newline inside what the parser calls one
command (`cat x<newline>\\<newline>touch y`). tests/engine/test_shell_permissions.py runs
approved lines through the real bash to look for more.

The caller (`PermissionPolicy`) approves a Bash call by pattern only when `problems` is empty
and every entry of `commands` matches a pattern. Wrappers that run another program (`sudo`,
`env`, `xargs`, `exec`, `nohup`, `timeout`, `find -exec` ...) are not unwrapped: the wrapper's
name starts the text, so a pattern written for `ls` never approves `sudo ls` or `xargs rm`.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

# Programs whose code comes from a string or stdin: only `-c '<literal>'` is looked into.
SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "csh", "tcsh",
                    "busybox"})
# Shells whose language is not bash's: their -c code cannot be checked with a bash parser.
_FOREIGN_SHELLS = frozenset({"fish", "csh", "tcsh", "busybox"})
# Short options a shell may take before `-c` without changing what runs (no rc files, no -o).
_SHELL_FLAGS = frozenset("ceuxlv")
# Loop variables zsh ties to search paths; assigning them changes which program a name runs.
_TIED = frozenset({"path", "fpath", "cdpath", "manpath", "mailpath", "module_path", "fignore"})
_MAX_DEPTH = 4                       # nested `sh -c` / `eval` levels looked into
_DEV_NULL = "/dev/null"

# Anonymous tokens that only join or bracket statements.
_GLUE = frozenset({";", ";;", "&&", "||", "|", "|&", "(", ")", "{", "}", "if", "then", "fi",
                   "elif", "else", "do", "done", "while", "until", "for", "in", "!", "\n"})
# Named nodes whose children are statements, walked in order.
_BLOCKS = frozenset({"program", "list", "pipeline", "subshell", "compound_statement", "do_group",
                     "negated_command", "if_statement", "elif_clause", "else_clause",
                     "while_statement"})
_OUTPUT_OPS = frozenset({">", ">>", "&>", "&>>", ">|", "<>", ">&"})
_INPUT_OPS = frozenset({"<", "<&"})
# Text that runs code when a shell expands it (unquoted here-document bodies; arguments of the
# builtins below, which evaluate array subscripts such as 'a[$(id)]' even from quoted text).
_RUNS_CODE = re.compile(r"`|\$\(|\$\[")
_EVALUATING_BUILTINS = frozenset({"let", "declare", "typeset", "local", "export", "readonly",
                                  "printf", "read", "unset", "test", "[", "mapfile", "readarray",
                                  "getopts", "wait", "shift", "return", "exit", "trap"})
# Nodes that bash reads on one logical line (a bare newline inside one is a parser slip).
_ONE_LINE = frozenset({"redirected_statement", "variable_assignment", "declaration_command",
                       "unset_command", "file_redirect", "herestring_redirect"})
# Words tree-sitter-bash reads as a command name but bash reads as syntax.
_KEYWORD_NAMES = frozenset({"{", "}", "coproc", "function", "select", "[[", "]]", "((", "))",
                            "then", "do", "done", "fi", "esac", "in"})
_ESCAPES = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r",
            "t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}


@dataclass(frozen=True)
class ShellCommand:
    """What one Bash command line runs, as far as permission patterns are concerned."""

    commands: tuple[str, ...]   # normalised text of each simple command, in source order
    problems: tuple[str, ...]   # why no pattern may approve the line; empty when patterns decide


_parser_lock = threading.Lock()
_parser: Any = None


def _parse(source: bytes) -> Any:
    """The tree-sitter tree of `source`. Decisions run in worker threads and a tree-sitter parser
    is not safe to share between them, so parsing is serialised (it takes microseconds)."""
    global _parser
    with _parser_lock:
        if _parser is None:
            import tree_sitter
            import tree_sitter_bash
            _parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))
        return _parser.parse(source)


def analyse(command: str) -> ShellCommand:
    """Split `command` into its simple commands and the constructs no pattern may approve."""
    walker = _Walker()
    try:
        walker.line(command, depth=0)
    except RecursionError:              # `((((…))))` thousands deep: parsed fine, walked not
        walker.problems.append("nesting too deep to check")
    return ShellCommand(tuple(walker.commands), tuple(dict.fromkeys(walker.problems)))


def _text(node: Any) -> str:
    return node.text.decode("utf-8", "replace")


def _ansi_c(body: str) -> str | None:
    """The value of a `$'...'` string body, or None for an escape this decoder does not know."""
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1:i + 2]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[nxt]
            digits = ""
            while len(digits) < width and body[i + 2 + len(digits):i + 3 + len(digits)] in \
                    tuple("0123456789abcdefABCDEF"):
                digits += body[i + 2 + len(digits)]
            if not digits:
                return None
            out.append(chr(int(digits, 16)))
            i += 2 + len(digits)
        elif nxt and nxt in "01234567":
            digits = nxt
            while len(digits) < 3 and body[i + 1 + len(digits):i + 2 + len(digits)] in tuple("01234567"):
                digits += body[i + 1 + len(digits)]
            out.append(chr(int(digits, 8) & 0xFF))
            i += 1 + len(digits)
        else:
            return None                 # \c<x> and friends: never mind, the name is not plain
    return "".join(out)


# Nodes whose whole span is text the parser read (their children need not cover every byte).
_WHOLE = frozenset({"heredoc_body", "string", "raw_string", "ansi_c_string", "translated_string",
                    "comment", "word", "heredoc_content", "string_content"})


def _bare_newline(data: bytes) -> bool:
    """Whether `data` holds a newline that is not a line continuation (an odd run of
    backslashes right before it escapes it; an even run is literal backslashes)."""
    start = 0
    while (i := data.find(b"\n", start)) != -1:
        run = 0
        while i - run > 0 and data[i - run - 1] == 0x5C:
            run += 1
        if run % 2 == 0:
            return True
        start = i + 1
    return False


def _starts_a_word(source: bytes, at: int) -> bool:
    """Whether bash starts a word at byte `at` (where `#` begins a comment): at the start, or
    after an unescaped blank, newline or operator character."""
    if at == 0:
        return True
    if source[at - 1:at] not in (b" ", b"\t", b"\n", b";", b"&", b"|", b"(", b")", b"<", b">"):
        return False
    run = 0
    while at - 1 - run > 0 and source[at - 2 - run] == 0x5C:
        run += 1
    return run % 2 == 0


def _skipped_text(root: Any, source: bytes) -> bool:
    """True if the parser skipped a byte bash reads (other than blanks and `\\<newline>`), or
    glued a line break into a word.

    tree-sitter-bash passes over `\\<space>` as if it were a line continuation, so in
    `echo \\ #$(touch y)` it sees a comment where bash sees the word ` #$(touch y)` and runs
    the substitution. Every other byte must belong to some token."""
    covered = bytearray(len(source))
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "word" and _bare_newline(node.text):
            return True            # `echo<newline>\\rm y`: the parser glued the line break on
        if node.type == "comment" and not _starts_a_word(source, node.start_byte):
            return True            # `}#x`, `\\<newline>#x`: bash reads no comment there
        if node.child_count == 0 or node.type in _WHOLE:
            covered[node.start_byte:node.end_byte] = b"\x01" * (node.end_byte - node.start_byte)
        else:
            stack.extend(node.children)
    for i, byte in enumerate(source):
        if covered[i] or byte in b" \t\n":
            continue
        if byte == 0x5C and source[i + 1:i + 2] == b"\n":
            continue
        return True
    return False


def _splits_a_line(node: Any) -> bool:
    """True if a newline that ends a command in bash lies between `node`'s children.

    tree-sitter-bash reads `cat x<newline>\\<newline>touch y` as one command `cat x touch y`;
    bash runs `touch y` on its own. A newline between two parts of one command is only
    legitimate when escaped (a line continuation)."""
    children = node.children
    source = node.text
    base = node.start_byte
    for before, after in zip(children, children[1:]):
        if _bare_newline(source[before.end_byte - base:after.start_byte - base]):
            return True
    return False


def _unescape_double_quoted(text: str) -> str:
    """The value of a double-quoted string's body with no expansions in it."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in '$`"\\\n':
            if text[i + 1] != "\n":            # backslash-newline is a line continuation
                out.append(text[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _unescape_word(text: str) -> str | None:
    """An unquoted word's value: backslash escapes removed. None when it would expand (glob,
    brace or tilde), so the word is not a fixed name."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            if text[i + 1] != "\n":            # backslash-newline is a line continuation
                out.append(text[i + 1])
            i += 2
            continue
        if ch in "*?[{~" or ch == "$" or ch == "`":
            return None
        out.append(ch)
        i += 1
    return "".join(out)


class _Walker:
    """Walks a tree-sitter-bash tree, collecting simple commands and problems."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.problems: list[str] = []
        self.trailing: dict[tuple[int, int], list[Any]] = {}   # redirections moved to a command
        self.source = b""                                       # the line being walked

    # --- lines and statements ------------------------------------------------------------------

    def line(self, command: str, depth: int) -> None:
        if any(ch not in "\n\t" and (ord(ch) < 32 or ord(ch) == 127) for ch in command):
            self.problems.append("control characters")
            return
        try:
            source = command.encode("utf-8")
        except UnicodeEncodeError:       # a lone surrogate from the JSON: not text a shell reads
            self.problems.append("text that is not valid UTF-8")
            return
        try:
            tree = _parse(source)
        except ImportError as exc:       # a broken install: asking is the safe answer
            self.problems.append(f"no shell parser ({exc})")
            return
        root = tree.root_node
        if root.has_error:
            self.problems.append("syntax the shell parser cannot read")
            return
        if _skipped_text(root, source):
            self.problems.append("text the shell parser misreads (a backslash before a blank or "
                                 "line break, or a # that bash does not take as a comment)")
            return
        outer, self.source = self.source, source     # `bash -c '...'` walks a line within a line
        try:
            self.statement(root, depth)
        finally:
            self.source = outer

    def statement(self, node: Any, depth: int) -> None:
        kind = node.type
        if kind in _ONE_LINE and _splits_a_line(node):
            self.problems.append("a line break the shell parser misreads")
            return
        if not node.is_named:
            if kind == "&":
                self.problems.append("running in the background (&)")
            elif kind not in _GLUE:
                self.problems.append(f"the shell syntax {kind!r}")
        elif kind in _BLOCKS:
            for child in node.children:
                self.statement(child, depth)
        elif kind == "comment":
            pass
        elif kind == "command":
            self.simple(node, depth)
        elif kind == "redirected_statement":
            body, *redirects = node.children
            # tree-sitter-bash hangs `a && b < f` and `a | b > f` on the whole list, but bash
            # binds the redirection to the last command, whose text it then belongs to.
            last = body
            while last.type in ("list", "pipeline"):
                named = [c for c in last.children if c.is_named and c.type != "comment"]
                if not named:
                    break
                last = named[-1]
            if last.type == "command":
                self.trailing[(last.start_byte, last.end_byte)] = redirects
                self.statement(body, depth)
                return
            self.statement(body, depth)
            for redirect in redirects:
                # No single command's text can carry a redirection of a whole block.
                if self.redirect(redirect, depth, []) is not None:
                    self.problems.append("input redirection into a compound command")
        elif kind == "variable_assignment":
            self.word(node, depth)
            self.commands.append(_text(node))
        elif kind in ("declaration_command", "unset_command"):
            for child in node.children:
                if child.is_named:
                    self.word(child, depth)
            if _RUNS_CODE.search(_text(node)):
                self.problems.append(f"{node.children[0].type} given `...` or $(...) text, "
                                     "which it may evaluate")
            self.commands.append(" ".join(_text(c) for c in node.children))
        elif kind == "for_statement":
            self.for_loop(node, depth)
        elif kind in ("file_redirect", "heredoc_redirect", "herestring_redirect"):
            if self.redirect(node, depth, []) is not None:
                self.commands.append(_text(node))
        else:
            self.problems.append(f"a {kind.replace('_', ' ')}")

    def for_loop(self, node: Any, depth: int) -> None:
        for child in node.children:
            if child.type == "variable_name":
                name = _text(child)
                if not (name.replace("_", "a").isalnum() and name == name.lower()) or name in _TIED:
                    self.problems.append(f"a loop that sets the variable {name}")
            elif child.type == "do_group":
                self.statement(child, depth)
            elif child.is_named:
                self.word(child, depth)
            elif child.type not in _GLUE:
                self.problems.append(f"the shell syntax {child.type!r}")

    # --- simple commands -----------------------------------------------------------------------

    def simple(self, node: Any, depth: int) -> None:
        trailing = self.trailing.pop((node.start_byte, node.end_byte), [])
        if _splits_a_line(node):
            self.problems.append("a line break the shell parser misreads")
            return
        parts: list[str] = []
        name: str | None = None
        has_name = False
        args: list[Any] = []
        assigns = feeds = False
        for child in [*node.children, *trailing]:
            kind = child.type
            if kind == "variable_assignment":
                assigns = True
                self.word(child, depth)
                parts.append(_text(child))
            elif kind == "command_name":
                has_name = True
                if not child.children:
                    self.problems.append("an empty command name")
                    continue
                name = self.name(child.children[0], depth)
                parts.append(name if name is not None else _text(child))
            elif kind in ("file_redirect", "heredoc_redirect", "herestring_redirect"):
                extra: list[Any] = []
                kept = self.redirect(child, depth, extra)
                if kept:
                    parts.append(kept)
                    feeds = True
                args.extend(extra)
                parts.extend(_text(e) for e in extra)
            elif kind == "comment":
                pass
            else:
                args.append(child)
                self.word(child, depth)
                parts.append(_text(child))
        if not has_name:
            self.commands.append(" ".join(parts))    # only assignments / redirections: `X=1`
            return
        if name is None:
            return                                  # the problem is recorded already
        base = name.rsplit("/", 1)[-1]
        if name in _KEYWORD_NAMES:
            self.problems.append(f"the shell keyword {name!r} where a command should be")
            return
        if base in _EVALUATING_BUILTINS and any(_RUNS_CODE.search(_text(a)) for a in args):
            self.problems.append(f"{base} given `...` or $(...) text, which it may evaluate")
        if base in SHELLS or name == "eval":
            if feeds:      # the inner commands' texts could not carry the redirection
                self.problems.append(f"{name} with input redirected into it")
                return
            self.code_runner(name, base, args, assigns, depth)
            return
        self.commands.append(" ".join(parts))

    def name(self, node: Any, depth: int) -> str | None:
        """The command name after unquoting, or None (with a problem) when it is not fixed."""
        self.word(node, depth)
        value = self.literal(node)
        if value is None:
            self.problems.append(f"a command name that is not plain text ({_text(node)})")
        return value

    def code_runner(self, name: str, base: str, args: list[Any], assigns: bool, depth: int) -> None:
        """`bash -c 'code'` and `eval 'code'`: the code's own commands must be approved instead."""
        if assigns:
            self.problems.append(f"{name} run with variable assignments")
            return
        if base in _FOREIGN_SHELLS:
            self.problems.append(f"{base}, whose language this check does not read")
            return
        values = [self.literal(a) for a in args]
        code: str | None
        if base not in SHELLS:                                   # eval joins its arguments
            code = None if None in values else " ".join(v for v in values if v is not None)
        else:
            code_at = None
            for i, value in enumerate(values):
                if value is None or not value.startswith("-") or value.startswith("--") \
                        or not set(value[1:]) <= _SHELL_FLAGS:
                    break
                if "c" in value:
                    code_at = i + 1
                    break
            if code_at is None or code_at >= len(values):
                self.problems.append(f"{base} running a script or stdin "
                                     "(only -c '<command>' is looked into)")
                return
            code = values[code_at]
        if code is None:
            self.problems.append(f"{name} of a string built at run time")
        elif depth >= _MAX_DEPTH:
            self.problems.append(f"{name} nested more than {_MAX_DEPTH} levels deep")
        else:
            self.line(code, depth + 1)

    # --- words ---------------------------------------------------------------------------------

    def word(self, node: Any, depth: int) -> None:
        """Record a problem for anything in this word that runs code or is not understood."""
        kind = node.type
        if kind == "command_substitution":
            self.problems.append("command substitution $(...) or `...`")
        elif kind == "process_substitution":
            self.problems.append("process substitution <(...)")
        elif kind in ("arithmetic_expansion", "arithmetic_expression"):
            self.problems.append("arithmetic expansion $((...))")
        elif kind == "expansion":
            if not [c.type for c in node.children] in (["${", "variable_name", "}"],
                                                        ["${", "special_variable_name", "}"]):
                self.problems.append(f"the parameter expansion {_text(node)}")
        elif kind in ("word", "raw_string", "ansi_c_string", "string_content", "number",
                      "variable_name", "special_variable_name", "heredoc_content", "file_descriptor"):
            pass
        elif kind in ("string", "translated_string", "concatenation", "simple_expansion",
                      "variable_assignment", "heredoc_body", "brace_expression", "array"):
            for child in node.children:
                if child.is_named:
                    self.word(child, depth)
        else:
            self.problems.append(f"a {kind.replace('_', ' ')}")

    def literal(self, node: Any) -> str | None:
        """The fixed value of a word after quote removal, or None if it expands to anything."""
        kind, text = node.type, _text(node)
        if kind == "word":
            return _unescape_word(text)
        if kind == "number":
            return text
        if kind == "raw_string":
            return text[1:-1]
        if kind == "ansi_c_string":
            return _ansi_c(text[2:-1])
        if kind == "string":
            # From the source between the quotes, not from the children: the parser's
            # string_content tokens leave out newlines, and bash's `sh -c` sees every byte.
            if any(c.is_named and c.type != "string_content" for c in node.children):
                return None
            return _unescape_double_quoted(text[1:-1])
        if kind == "concatenation":
            children = node.children
            if any(a.end_byte != b.start_byte for a, b in zip(children, children[1:])):
                return None
            values = [self.literal(c) for c in children]
            return None if None in values else "".join(v for v in values if v is not None)
        return None

    # --- redirections ---
    def heredoc_is_sound(self, node: Any) -> bool:
        """Whether bash ends this here-document where tree-sitter-bash does: the end marker is a
        line of its own equal to the delimiter, and no body line is one. (The parser also takes
        `EOF | cat <<'X'` as an end line; bash reads on, and runs `$(...)` in what follows.)"""
        kinds = {c.type: c for c in node.children}
        start, end, body = kinds.get("heredoc_start"), kinds.get("heredoc_end"), kinds.get("heredoc_body")
        if start is None or end is None:
            return False
        strip_tabs = "<<-" in kinds
        delimiter = _text(start)
        for ch in "'\"\\":
            delimiter = delimiter.replace(ch, "")
        if _text(end) != delimiter:
            return False
        source = self.source
        line_start = source.rfind(b"\n", 0, end.start_byte) + 1
        indent = source[line_start:end.start_byte]
        if indent.strip(b"\t") if strip_tabs else indent:
            return False
        if source[end.end_byte:end.end_byte + 1] not in (b"", b"\n"):
            return False
        lines = _text(body).split("\n") if body is not None else []
        return not any((line.lstrip("\t") if strip_tabs else line) == delimiter for line in lines)

    # --- redirections --------------------------------------------------------------------------

    def redirect(self, node: Any, depth: int, extra: list[Any]) -> str | None:
        """Check one redirection; returns its text when it belongs in the command's text (input
        redirections), None when it does not (discarded or merged output, or a problem). Words
        the parser hung on the redirection (`ls >out x`) are arguments: they go to `extra`."""
        if node.type == "heredoc_redirect":
            if not self.heredoc_is_sound(node):
                self.problems.append("a here-document whose end the shell parser may misread")
            shown = []
            for child in node.children:
                if child.type in ("<<", "<<-", "heredoc_start"):
                    shown.append(_text(child))
                elif child.type == "heredoc_body":
                    self.word(child, depth)   # an unquoted delimiter expands $(...) in the body
                    start = next((_text(c) for c in node.children if c.type == "heredoc_start"), "")
                    if not any(q in start for q in "'\"\\") and _RUNS_CODE.search(_text(child)):
                        # The parser leaves backticks in a body as text; the shell runs them.
                        self.problems.append("a here-document that runs `...` or $(...)")
                elif child.type == "heredoc_end":
                    pass
                else:
                    self.statement(child, depth)   # `cat <<EOF | sh`: the pipe hangs off here
            return "".join(shown)
        if node.type == "herestring_redirect":
            for child in node.children:
                if child.is_named:
                    self.word(child, depth)
            return " ".join(_text(c) for c in node.children)
        fd, op, target = "", None, None
        for child in node.children:
            if child.type == "file_descriptor":
                fd = _text(child)
            elif not child.is_named:
                op = child.type
            elif target is None:
                target = child
            else:
                extra.append(child)         # `ls >out x`: x is an argument of ls
                self.word(child, depth)
        op = op or ">"
        if op in (">&-", "<&-"):
            return None
        if target is not None:
            self.word(target, depth)
        value = self.literal(target) if target is not None else None
        if op in (">&", "<&") and value is not None and (value.isdigit() or value == "-"):
            return None                     # 2>&1, >&2: duplicates a descriptor, writes nothing new
        if op in _OUTPUT_OPS:
            if value != _DEV_NULL:
                self.problems.append(f"output redirection to a file ({fd}{op} "
                                     f"{_text(target) if target is not None else ''})".rstrip())
            return None
        if op in _INPUT_OPS:
            return f"{fd}{op} {_text(target) if target is not None else ''}".rstrip()
        self.problems.append(f"the redirection {op}")
        return None

"""The operator's commands of the `mnemara` CLI: doctor, backup, restore, redact.

Registered on the `main` group by importing this module (the last lines of `cli.py`). Importing
it costs click and the standard library only; each command imports its module when it runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .cli import instance_option, main
from .errors import MnemaraError
from .instance import Instance, default_instance_name, list_instances


@main.command()
@click.option("--instance", "-i", "instance_name", metavar="NAME", default=None,
              help="Instance to check (default: MNEMARA_INSTANCE or 'default', if it exists).")
@click.option("--all", "all_instances", is_flag=True, help="Check every instance.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def doctor(instance_name: str | None, all_instances: bool, as_json: bool) -> None:
    """Check the environment and an instance; every problem comes with its fix. Changes nothing.

    Exit 0 when nothing is wrong (warnings allowed), 1 when a check found a problem, 2 on a
    usage error (such as a named instance that does not exist).
    """
    from .ops.doctor import (PROBLEM_EXIT, Report, diagnose, environment_checks, format_report,
                             instance_checks)
    from .termsafe import inert
    if all_instances and instance_name:
        raise MnemaraError("give either --instance NAME or --all, not both")
    if all_instances:
        env = environment_checks()
        reports = []
        for inst in _all_instance_dirs():
            reports.append(Report(inst.name, str(inst.root), env + instance_checks(inst)))
        if not reports:
            reports = [diagnose(None)]
        if as_json:
            click.echo(json.dumps([r.to_json() for r in reports], indent=2, ensure_ascii=False))
        else:
            click.echo("\n\n".join(format_report(r, inert) for r in reports))
        sys.exit(PROBLEM_EXIT if any(r.problems for r in reports) else 0)
    inst = None
    if instance_name is not None:
        inst = Instance.named(instance_name)
        if not inst.root.is_dir():
            inst.require()  # one line: no such instance (exit 2)
    else:
        candidate = Instance.named(default_instance_name())
        inst = candidate if candidate.root.is_dir() else None
    report = diagnose(inst)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        click.echo(format_report(report, inert))
    sys.exit(report.exit_code)


def _all_instance_dirs() -> list[Instance]:
    """Every instance, including directories whose config.json is missing (doctor says so)."""
    from .instance import NAME_RE, home_root
    root = home_root()
    seen = {i.name for i in list_instances()}
    extra = [Instance(c.name, c) for c in sorted(root.iterdir())
             if c.is_dir() and NAME_RE.fullmatch(c.name) and c.name not in seen] if root.is_dir() else []
    return sorted([*list_instances(), *extra], key=lambda i: i.name)


@main.command()
@instance_option
@click.option("--output", "-o", "output", required=True, metavar="FILE.tar.gz",
              type=click.Path(dir_okay=True, path_type=Path), help="The archive to write (0600).")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def backup(instance_name: str, output: Path, force: bool) -> None:
    """Write the whole instance (turns, notes, wiki, memory index, config, role doc) to one
    .tar.gz with a manifest of sha256 sums. Safe while a chat session runs."""
    from .ops.backup import backup as run_backup
    from .ops.progress import progress_bar
    inst = Instance.named(instance_name)
    with progress_bar("backing up") as update:
        report = run_backup(inst, output, force=force, progress=update)
    for warning in report.warnings:
        click.echo(f"mnemara: warning: {warning}", err=True)
    turns = "" if report.turns is None else f", {report.turns:,} window + {report.archived:,} archived turns"
    click.echo(f"backed up {instance_name!r} to {report.path} ({report.files} files, "
               f"{_size(report.path.stat().st_size)}{turns})")


@main.command()
@click.argument("archive", metavar="FILE", type=click.Path(path_type=Path))
@click.option("--instance", "-i", "instance_name", default=None, metavar="NEW",
              help="Name of the new instance (default: the name stored in the backup).")
def restore(archive: Path, instance_name: str | None) -> None:
    """Create a NEW instance from a backup, after checking every file against the manifest.
    Never overwrites an existing instance."""
    from .ops.backup import restore as run_restore
    from .ops.progress import progress_bar
    with progress_bar("checking and restoring") as update:
        report = run_restore(archive, instance_name, progress=update)
    for warning in report.warnings:
        click.echo(f"mnemara: warning: {warning}", err=True)
    turns = "" if report.turns is None else f", {report.turns:,} window + {report.archived:,} archived turns"
    click.echo(f"restored instance {report.name!r} at {report.root} ({report.files} files{turns})")


@main.command()
@instance_option
@click.option("--dry-run", is_flag=True, help="Only list where the secrets are (file:line and "
              "kind, never the secret); write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def redact(instance_name: str, dry_run: bool, as_json: bool) -> None:
    """Replace secrets (API keys, tokens, passwords, private keys) stored in memory notes and
    wiki pages by markers such as [redacted:api-key], the ones `mnemara doctor` reports.

    Note ids and line numbers stay as they were; the index entries of changed notes and pages
    are re-queued. Waits for a running turn to finish (instance lock). The turn store is not
    touched: turns keep what was typed.
    """
    from .ops.redaction import TURNS_NOTE, redact_instance
    from .termsafe import inert
    inst = Instance.named(instance_name).require()
    config = inst.load_config()
    report = redact_instance(inst, config, dry_run=dry_run)
    for warning in report.warnings:
        click.echo(f"mnemara: warning: {inert(warning)}", err=True)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
        return
    files = report.per_file()
    if not report.secrets:
        click.echo(f"no secrets found in {report.scanned} note and wiki file(s) of "
                   f"{instance_name!r}; nothing to do ({TURNS_NOTE})")
        return
    for path, found in files.items():
        if dry_run:
            for s in found:
                click.echo(f"{inert(path)}:{s.line}: {s.kind}")
        else:
            kinds = ", ".join(dict.fromkeys(s.kind for s in found))
            click.echo(f"{inert(path)}: {len(found)} secret(s) redacted ({kinds})")
    total = f"{len(report.secrets)} secret(s) in {len(files)} file(s)"
    if dry_run:
        click.echo(f"would redact {total} (dry run: nothing written; {TURNS_NOTE})")
    else:
        click.echo(f"redacted {total}; {report.requeued} index entr"
                   f"{'y' if report.requeued == 1 else 'ies'} re-queued ({TURNS_NOTE})")


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} bytes"

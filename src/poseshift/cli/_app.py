"""Shared CLI plumbing: the group class that turns PoseshiftError into a one-line error."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from typer.core import TyperGroup

from poseshift.errors import PoseshiftError


class PoseshiftGroup(TyperGroup):
    """Prints ``error: ...`` (one line, exit 2) for PoseshiftError instead of a traceback.

    ``default_command``: if the first argument is not a subcommand, run this one, so that
    ``poseshift split PROJECT`` and ``poseshift split list PROJECT`` can both exist.
    """

    default_command: str | None = None

    # typer.Context subclasses the click Context typer bundles: the stubs' LSP complaint.
    def invoke(self, ctx: typer.Context):  # type: ignore[override]
        warnings.formatwarning = _one_line_warning
        try:
            return super().invoke(ctx)
        except PoseshiftError as exc:
            typer.echo(f"error: {exc}", err=True)
            ctx.exit(2)

    def resolve_command(self, ctx: typer.Context, args: list[str]):  # type: ignore[override]
        if (
            self.default_command
            and args
            and args[0] not in self.commands
            and not args[0].startswith("-")
        ):
            args = [self.default_command, *args]
        return super().resolve_command(ctx, args)

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        if (
            self.default_command
            and args
            and args[0] not in self.commands
            and args[0] not in ("--help", "-h")
        ):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


def group(name_help: str, default_command: str | None = None) -> typer.Typer:
    """A subcommand group; ``default_command`` runs when no subcommand name is given."""
    cls = type("Group", (PoseshiftGroup,), {"default_command": default_command})
    return typer.Typer(
        cls=cls,
        help=name_help,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
    )


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Users get ``warning: <text>``, not the source line that raised it."""
    return f"warning: {message}\n"


@contextmanager
def progress_bar(description: str, total: int | None = None) -> Iterator[Callable[..., None]]:
    """A transient rich bar for a library ``progress=`` callback.

    Yields ``report(done=None, total=None)``: with ``done`` it sets the count (and total, if
    given), without it advances by one.
    """
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(description, total=total)

        def report(done: int | None = None, total: int | None = None) -> None:
            if done is None:
                bar.advance(task)
            else:
                bar.update(task, completed=done, total=total)

        yield report

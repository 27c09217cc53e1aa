"""The ``tierdesk`` command: a thin typer shell over ``core``.

Each command module under ``console/commands`` registers its commands here.
Errors a user can fix (:class:`core.errors.TierdeskError`) become one line on
stderr and exit code 2; anything else is logged to a file and reported in one
line, never as a traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from console.common import DbOption


class TierdeskGroup(TyperGroup):
    """The root group: turns every failure into a clean message and exit code."""

    def invoke(self, ctx: Any) -> Any:
        from core.errors import TierdeskError

        try:
            return super().invoke(ctx)
        except TierdeskError as exc:
            report_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            from console.common import err

            err().print("interrupted")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except OSError as exc:
            if not _broken_pipe(exc):
                report_crash(exc)
                raise typer.Exit(2) from None
            # `tierdesk export … | head`: the reader has all it wants. Stop quietly, as Unix tools do.
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141) from None
        except Exception as exc:  # a bug: keep the details, spare the user the traceback
            if type(exc).__module__.startswith("typer"):
                raise
            report_crash(exc)
            raise typer.Exit(2) from None


def _broken_pipe(exc: OSError) -> bool:
    import errno

    # Python raises BrokenPipeError; polars' writers an OSError whose text says so.
    return isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE or "Broken pipe" in str(exc)


def report_error(exc: Any) -> None:
    from rich.markup import escape

    from console.common import err

    problems = getattr(exc, "problems", None) or [exc.message]
    if len(problems) > 1:
        err().print(f"[bold red]error:[/] {escape(exc.message)}")
        for problem in problems:
            err().print(f"  {escape(problem)}")
    else:
        err().print(f"[bold red]error:[/] {escape(problems[0])}")
    if exc.hint:
        err().print(f"[dim]{escape(exc.hint)}[/]")


def report_crash(exc: BaseException) -> None:
    from rich.markup import escape

    from console.common import err, write_crash_log

    log_file = write_crash_log(exc)
    where = f"The details are in {log_file}." if log_file else "The details could not be written to a log file."
    err().print(
        f"[bold red]internal error:[/] {escape(type(exc).__name__)}: {escape(str(exc))}\n"
        f"[dim]This is a bug in tierdesk, not in your data. {escape(where)} "
        "Transactions in progress were rolled back.[/]"
    )


app = typer.Typer(
    name="tierdesk",
    cls=TierdeskGroup,
    help="A terminal operations console for a shop's customer base. "
    "Run without a command to open the console.",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from core import __version__

        typer.echo(f"tierdesk {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    db: DbOption = None,
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Open the console on the store (or run one of the commands below)."""
    from console import common

    common.ROOT_DB = db  # typed before the command, --db is meant for it too
    if ctx.invoked_subcommand is None:
        from console.commands.console_cmd import open_console

        open_console(db)


def _register() -> None:
    from console.commands import admin, campaigns, console_cmd, data, demo, exporting, reading

    for module in (admin, data, exporting, reading, campaigns, demo, console_cmd):
        module.register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    # numpy here counts, sorts and searches; it never multiplies matrices. Yet OpenBLAS starts a
    # thread per core when numpy is imported and keeps them spinning a while: 0.1 s of CPU taken
    # from the work on a 2-core machine. Numpy is imported later, by the commands that use it.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    finally:
        # The process ends here: spare the interpreter its last full garbage collection, a
        # walk over every object polars, typer and rich made (0.1 s after a large import).
        # Stores are closed and files flushed by now; the OS takes the memory back.
        import gc

        gc.freeze()


if __name__ == "__main__":
    main()

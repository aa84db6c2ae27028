"""The ``bertdistill`` command: parses options and calls library functions, one module per command.

User errors print one line (what, where, how to fix) and exit 2; ``--debug`` shows the traceback. A training run
that saved its model but failed (every evaluation collapsed, or a ``--strict`` check) prints its one-line
verdict and exits 3 (``errors.EXIT_RUN_FAILED``).
"""

from __future__ import annotations

import os
import sys

import typer

try:  # typer ≥ 0.20 runs on its own copy of click
    from typer._click import exceptions as _click_exc
    from typer.exceptions import Abort as _Abort
except ImportError:  # pragma: no cover
    from click import exceptions as _click_exc
    from click.exceptions import Abort as _Abort

from bertdistill import __version__
from bertdistill.commands import bench, corpus, data, distill, export, finetune, label, predict, pretrain, prune
from bertdistill.errors import RunFailed, UserError

app = typer.Typer(
    name="bertdistill",
    help="Make BERT-family QA and sentence-pair models small and fast: label with teachers, "
         "distill a student (TMKD, PKD), benchmark it and export it to ONNX.\n\n"
         "Example: bertdistill data --data ../shared/datasets/glue/RTE/train.tsv",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)

for module in (data, corpus, label, pretrain, finetune, prune, bench, export, predict, distill):
    app.command(name=module.NAME, help=module.HELP, no_args_is_help=True)(module.command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bertdistill {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of errors."),
) -> None:
    """Global options (--debug is also read by main() before parsing)."""


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("BERTDISTILL_DEBUG") == "1"
    if "--debug" in argv:  # accepted anywhere on the line, not only before the subcommand
        argv = ["--debug"] + [a for a in argv if a != "--debug"]
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Library tqdm bars ("Loading weights", "Writing model shards") would interleave with our own
    # progress bars; read by huggingface_hub and transformers when they are first imported.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from bertdistill.io import forget_outputs

    forget_outputs()
    try:
        code = app(args=argv, prog_name="bertdistill", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except _click_exc.NoArgsIsHelpError as exc:  # the help is already printed
        sys.exit(exc.exit_code)
    except _click_exc.UsageError as exc:  # a bad option value: one line too, as click's message says it
        if debug:
            raise
        message = " ".join(exc.format_message().split())
        command = exc.ctx.command_path if exc.ctx is not None else "bertdistill"
        typer.echo(f"error: {message} — fix: see {command} --help", err=True)
        sys.exit(2)
    except _click_exc.ClickException as exc:
        typer.echo(f"error: {' '.join(exc.format_message().split())}", err=True)
        sys.exit(exc.exit_code)
    except _Abort:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except RunFailed as exc:  # before UserError, its base class
        if debug:
            raise
        typer.echo(f"failed: {exc.line()}", err=True)
        sys.exit(exc.exit_code)
    except UserError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc.line()}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # disk full, read-only, I/O error... while writing (an OSError, or a library's
        # own exception around one: safetensors, torch.save): one line naming the path, exit 2
        from bertdistill.io import os_error_as_user_error

        error = os_error_as_user_error(exc)
        if error is None or debug:
            raise
        typer.echo(f"error: {error.line()}", err=True)
        sys.exit(2)
    finally:
        from bertdistill.io import forget_outputs

        forget_outputs()


if __name__ == "__main__":
    main()

"""``talkinghead morphable``: inspect the embedded morphable model."""

from __future__ import annotations

from pathlib import Path

import click

from talkinghead.cli import user_errors


@click.command("morphable")
@click.option("--sheet", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a png with every blendshape at weight 1 beside the neutral face.")
@click.option("--params", "params_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Draw the sheet on the subject stored in this ParamSequence (its identity).")
@user_errors
def command(sheet: Path | None, params_path: Path | None) -> None:
    """Describe the morphable model; with --sheet, draw its blendshapes to judge them by eye."""
    from talkinghead.morphable.model import MODEL_ID, MorphableModel

    model = MorphableModel.default()
    if params_path is not None:
        from talkinghead.params import ParamSequence

        seq = ParamSequence.load(params_path)
        if seq.identity is None:
            raise click.ClickException(f"{params_path} holds no identity to draw")
        model = MorphableModel.for_subject(seq.identity)
    click.echo(f"model {MODEL_ID}: {model.neutral.shape[0]} points, {len(model.triangles)} triangles, "
               f"{model.n_coefficients} blendshapes")  # fmt: skip
    if sheet is None:
        click.echo(", ".join(model.names))
        return
    from talkinghead.morphable.sheet import draw_sheet

    draw_sheet(model, sheet)
    click.echo(str(sheet))

"""The lifecycle's stage names, derived from the plan's checkpoints: the one vocabulary.

A rep's lifecycle has three fixed stages, ``scan``, ``diagnose`` and ``plan``, then one review per
checkpoint of the plan, ``checkpoint-1`` … ``checkpoint-N``, and the ``final`` review. How many
checkpoints there are is the policy's choice (``checkpoints:`` in ``params/policy.yaml``, copied into
each plan), so the review stages are always computed from that number, never listed by hand. The
command line, the batch jobs, the plan, the review and the report titles all speak through this module.

Example
-------
>>> review_stages(4)
['checkpoint-1', 'checkpoint-2', 'checkpoint-3', 'checkpoint-4', 'final']
>>> parse_stage("2", 3), parse_stage(2, 3), parse_stage("final", 3)
('checkpoint-2', 'checkpoint-2', 'final')
>>> stage_title("checkpoint-2")
'Checkpoint 2 review'
"""

from __future__ import annotations

import re

from pipnb.errors import PlanError

__all__ = ["FINAL", "FIXED_STAGES", "checkpoint_number", "checkpoint_stage", "lifecycle_stages", "parse_stage",
           "review_stages", "stage_name", "stage_title"]

#: The stages every rep goes through before a plan's reviews, in order.
FIXED_STAGES = ("scan", "diagnose", "plan")
#: The last review of a plan.
FINAL = "final"

_TITLES = {"scan": "Team scan", "diagnose": "Diagnosis", "plan": "Performance improvement plan",
           FINAL: "Final review"}
_CHECKPOINT = re.compile(r"checkpoint-([1-9][0-9]*)")


def checkpoint_stage(number: int) -> str:
    """The stage name of the ``number``-th checkpoint (1-based): ``checkpoint_stage(2) == "checkpoint-2"``."""
    return f"checkpoint-{int(number)}"


def checkpoint_number(stage: str) -> int | None:
    """The checkpoint a stage name reviews (2 for ``"checkpoint-2"``), or None for any other stage."""
    match = _CHECKPOINT.fullmatch(str(stage))
    return int(match.group(1)) if match else None


def review_stages(n_checkpoints: int) -> list[str]:
    """A plan's reviews, in order: one per checkpoint, then ``"final"``."""
    return [checkpoint_stage(i) for i in range(1, n_checkpoints + 1)] + [FINAL]


def lifecycle_stages(n_checkpoints: int) -> list[str]:
    """Every stage of a rep's lifecycle, in order: the fixed stages, then :func:`review_stages`."""
    return [*FIXED_STAGES, *review_stages(n_checkpoints)]


def stage_name(value: int | str) -> str:
    """The stage name for what a user typed, without asking whether a plan has it.

    Accepts a fixed stage (``"plan"``), ``"final"``, ``"checkpoint-2"`` or a checkpoint number (``2``,
    ``"2"``).

    Raises
    ------
    PlanError
        When ``value`` names no stage of any lifecycle.
    """
    text = str(value).strip().lower()
    if text.isdigit() and int(text) >= 1:
        return checkpoint_stage(int(text))
    if text in _TITLES or checkpoint_number(text) is not None:
        return text
    raise PlanError(f"{value!r} is not a stage (use {', '.join(FIXED_STAGES)}, a checkpoint number, "
                    f"checkpoint-N or {FINAL})")


def parse_stage(value: int | str, n_checkpoints: int, *, file: str | None = None) -> str:
    """The review stage for what a user typed, checked against a plan with ``n_checkpoints`` checkpoints.

    Parameters
    ----------
    value
        ``2``, ``"2"``, ``"checkpoint-2"`` or ``"final"``.
    n_checkpoints
        How many checkpoints the plan (or the policy) has.
    file
        The plan file, named in the error.

    Returns
    -------
    str
        ``"checkpoint-<n>"`` or ``"final"``.

    Raises
    ------
    PlanError
        When the plan has no such review; the message lists the reviews it has.
    """
    allowed = review_stages(n_checkpoints)
    try:
        name = stage_name(value)
    except PlanError:
        name = None
    if name not in allowed:
        choices = " or ".join([", ".join(allowed[:-1]), FINAL] if len(allowed) > 1 else allowed)
        raise PlanError(f"there is no {str(value)!r} review in a plan with {n_checkpoints} checkpoints "
                        f"(use {choices}; a number N stands for checkpoint-N)", file=file)
    return name


def stage_title(stage: str) -> str:
    """The heading a report shows for a stage: ``"Diagnosis"``, ``"Checkpoint 2 review"``, ``"Final review"``."""
    name = stage_name(stage)
    number = checkpoint_number(name)
    return f"Checkpoint {number} review" if number is not None else _TITLES[name]

"""Joint training: every language of the order in one task, the upper bound of a sequence."""

from mlclip_cli.continual.learners import Learner, register


@register
class Joint(Learner):
    name = "joint"
    summary = "all languages at once (upper bound)"
    joint = True

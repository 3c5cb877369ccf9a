"""Full fine-tuning of the text tower: the forgetting reference (everything moves)."""

from mlclip_cli.continual.learners import Learner, register


@register
class FullFineTuning(Learner):
    name = "full-ft"
    summary = "every text-tower parameter (forgetting reference)"
    train_tower = True

"""CLL-CLIP: only the token table trains (TEIR, when asked, is applied by the runner)."""

from mlclip_cli.continual.learners import Learner, register


@register
class CllClip(Learner):
    name = "cll-clip"
    summary = "token embeddings only (CLL-CLIP)"

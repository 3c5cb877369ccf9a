"""MLA as a continual baseline (CLFM's): the token table trains as in CLL-CLIP, and each
language gets its own acquirers after every block, trained during its task only and chosen by
the caption's language at test time."""

from mlclip_cli.continual.learners import Learner, register


@register
class MlaLearner(Learner):
    name = "mla"
    summary = "token embeddings + per-language acquirers (MLA)"
    acquirers = True

    def start_task(self, encoder, languages, task):
        for name, layers in encoder.acquirers.items():  # earlier languages' acquirers stay as they are
            layers.requires_grad_(False)
        for language in languages:
            if language not in encoder.acquirers:
                encoder.add_acquirers(language)

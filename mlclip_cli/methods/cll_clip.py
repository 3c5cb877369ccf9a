"""CLL-CLIP (continual language learning of CLIP's token embeddings, with TEIR and its baseline
learners; mlclip_cli/continual): `mlclip continual` runs a sequence, `mlclip extend --method
cll-clip` adds one language, and any continual extension folder works as --model."""

from mlclip_cli.methods import Method, register


def _encoder(folder, device=None, fallback="none"):
    from mlclip_cli.continual.encoder import ContinualEncoder

    return ContinualEncoder(folder, device, fallback)


def _extend(config, progress=None, on_step=None, on_task=None):
    from mlclip_cli.continual.runner import extend_continual

    return extend_continual(config, progress, on_step, on_task)


def _extend_config():
    from mlclip_cli.continual.runner import ExtendConfig

    return ExtendConfig


register(Method("cll-clip", "CLIP's token embeddings learnt language after language (CLL-CLIP, TEIR, baselines)",
                train=None, extend=_extend, encoder=_encoder, train_config=None, extend_config=_extend_config,
                sequence_hint="cll-clip learns languages one after another: run `mlclip continual --order en,de,...` "
                              "(or add one with `mlclip extend --method cll-clip --lang ...`)"))

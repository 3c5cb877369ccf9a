"""MLA (Multilingual Acquisition): a shared non-native token block and per-language acquirers
over the frozen CLIP text tower (mlclip_cli/mla)."""

from mlclip_cli.methods import Method, register


def _encoder(folder, device=None, fallback="none"):
    from mlclip_cli.mla.encoder import MlaEncoder

    return MlaEncoder(folder, device, fallback)


def _train(config, progress=None, on_step=None, on_eval=None):
    from mlclip_cli.mla.method import train_mla

    return train_mla(config, progress, on_step, on_eval)


def _extend(config, progress=None, on_step=None, on_eval=None):
    from mlclip_cli.mla.method import extend_mla

    return extend_mla(config, progress, on_step, on_eval)


def _config():
    from mlclip_cli.mla.method import MlaConfig

    return MlaConfig


register(Method("mla", "language acquirers + shared non-native embeddings over the frozen CLIP (NLT then LE)",
                train=_train, extend=_extend, encoder=_encoder, train_config=_config, extend_config=_config))

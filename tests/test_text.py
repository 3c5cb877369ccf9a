import pytest

from mlclip_cli.text import clean_caption, mask_reason, normalise_language


def test_clean_caption_removes_invisible_and_stray_whitespace():
    assert clean_caption("  Un\u200b chat\tsur  le\u00a0lit \r") == "Un chat sur le lit"
    assert clean_caption("\ufeffA dog") == "A dog"


def test_clean_caption_keeps_meaningful_joiners():
    assert "\u200c" in clean_caption("می\u200cخواهم")


@pytest.mark.parametrize("text,reason", [
    ("Could not translate", "placeholder"), ("could not translate.", "placeholder"),
    ("?", "placeholder"), ("", "empty"), ("...", "no letters"), ("Ein Hund", None),
])
def test_mask_reason(text, reason):
    assert mask_reason(text) == reason


def test_language_aliases():
    assert normalise_language("jp") == "ja"
    assert normalise_language(" DE ") == "de"

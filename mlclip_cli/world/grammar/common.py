"""Small pieces of sentence building that the European grammars share."""


def join_list(phrases: list[str], conjunction: str) -> str:
    """"a, b and c" with the language's word for "and"."""
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + f" {conjunction} " + phrases[-1]


def capitalise(text: str) -> str:
    return text[0].upper() + text[1:]

"""Reference baselines for the text-to-text references table (issue 12): published methods that
mlclip's own results are compared with, run with the upstream libraries themselves.

- `distill`: multilingual knowledge distillation (Reimers & Gurevych 2020) of the frozen English
  MiniLM into a trainable copy of itself, with sentence-transformers' own MSELoss.

Nothing here is imported by the rest of mlclip at start-up: these modules need the optional
`real` extra (`pip install -e ".[real]"`).
"""

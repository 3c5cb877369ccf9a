"""The method-neutral core both language-extension methods stand on: the frozen text towers,
the acquirer module, grouped encoding, the training pairs (in memory and streamed) with their
validation sets, and the extension folder format. Nothing here imports a method."""

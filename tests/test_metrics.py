import numpy as np
import pytest

from mlclip_cli.metrics import image_to_text_ranks, retrieval_metrics, text_to_image_ranks


def brute_force(text, image, caption_image, k):
    """Literal definition: sort everything, look for the right answer in the top k."""
    text = text / np.linalg.norm(text, axis=1, keepdims=True)
    image = image / np.linalg.norm(image, axis=1, keepdims=True)
    sims = text @ image.T
    t2i = []
    for i in range(len(text)):
        order = sorted(range(len(image)), key=lambda j: (-sims[i, j], j != caption_image[i]))
        t2i.append(caption_image[i] in order[:k])
    i2t = []
    for j in range(len(image)):
        order = sorted(range(len(text)), key=lambda i: (-sims[i, j], caption_image[i] != j))
        i2t.append(any(caption_image[i] == j for i in order[:k]))
    return 100 * np.mean(t2i), 100 * np.mean(i2t)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_with_several_captions_per_image(seed):
    rng = np.random.default_rng(seed)
    n_images = 40
    caption_image = np.concatenate([np.arange(n_images), rng.integers(0, n_images, 60)])
    image = rng.normal(size=(n_images, 8))
    text = image[caption_image] + rng.normal(scale=1.5, size=(len(caption_image), 8))
    metrics = retrieval_metrics(text, image, caption_image)
    for k in (1, 5, 10):
        t2i, i2t = brute_force(text, image, caption_image, k)
        assert metrics[f"image_retrieval_recall@{k}"] == pytest.approx(t2i)
        assert metrics[f"text_retrieval_recall@{k}"] == pytest.approx(i2t)
    six = [v for key, v in metrics.items() if key != "mean_recall"]
    assert metrics["mean_recall"] == pytest.approx(np.mean(six))


def test_perfect_and_constant_embeddings():
    image = np.eye(6)
    caption_image = np.array([0, 1, 2, 3, 4, 5, 0, 3])
    perfect = retrieval_metrics(image[caption_image], image, caption_image)
    assert all(v == 100.0 for v in perfect.values())
    constant = retrieval_metrics(np.ones((8, 6)), np.ones((6, 6)), caption_image)
    assert constant["image_retrieval_recall@1"] == 0.0  # ties never count as hits


def test_image_to_text_uses_best_caption():
    image = np.array([[1.0, 0.0], [0.0, 1.0]])
    text = np.array([[0.0, 1.0], [1.0, 0.1], [0.9, 0.2]])  # caption 0 is a bad caption of image 0
    caption_image = np.array([0, 1, 0])
    assert list(image_to_text_ranks(text, image, caption_image)) == [1, 2]
    assert list(text_to_image_ranks(text, image, caption_image)) == [1, 1, 0]

"""The search behind `mlclip serve`: one model and one index, loaded once, and a few worker
threads (`ServeConfig.encoders`, 2 by default) that share them.

Every query goes through one queue. A worker takes whatever has arrived together (up to
`max_batch` queries), routes each text to its language (the one asked for, or language ID's),
encodes the batch (an MLA extension runs a mixed-language batch through the frozen blocks once,
each pack's acquirers on its own rows) and searches the index once for the whole batch. torch and
FAISS release the GIL in their kernels, so two workers use both cores (measured: 344 against 298
queries/s with one, and a third was slower: docs/benchmarks.md); each uses one torch thread.

A small LRU of query embeddings (keyed by the text and the language asked for) saves the forward
pass for a repeated query; `stats()` counts its hits so a load test can say how much it helped.
Nothing here knows HTTP: errors a caller can cause are `MlclipError`s with one line each.
"""

from __future__ import annotations

import queue
import threading
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from mlclip_cli.api import AUTO, Detection, Model
from mlclip_cli.collection import Hit, Index
from mlclip_cli.errors import MlclipError
from mlclip_cli.serve.config import ServeConfig
from mlclip_cli.text import normalise_language


@dataclass(frozen=True)
class Answer:
    query: str  # the text (for an image query: "image")
    language: str | None  # where the text went; None for an image
    confidence: float | None  # language ID's confidence (1.0 when the language was named)
    hits: list[Hit]
    cached: bool = False  # the text's embedding came from the cache


@dataclass
class _Job:
    k: int
    future: Future
    text: str | None = None
    lang: str = AUTO
    image: object = None  # a decoded RGB PIL image


_STOP = object()


class SearchEngine:
    """Text and image queries answered by one worker thread; `text()` and `image()` return futures."""

    def __init__(self, model: Model, index: Index, config: ServeConfig):
        index.check_model(model)
        self.model, self.index, self.config = model, index, config
        self.languages = model.languages
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._cache: OrderedDict[tuple[str, str], tuple[np.ndarray, Detection]] = OrderedDict()
        self._counts = {"queries": 0, "cache_hits": 0, "cache_misses": 0, "batches": 0, "image_queries": 0}
        self._lock = threading.Lock()  # guards _counts for readers on other threads
        self._warming = False
        self._cache_lock = threading.Lock()  # the LRU is shared by the workers
        self._threads = [threading.Thread(target=self._run, name=f"mlclip-serve-encoder-{n}", daemon=True)
                         for n in range(config.encoders)]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------------------------- requests

    def check_text(self, text: str, lang: str = AUTO) -> str:
        """The language code to route `text` to ("auto" or a code the model takes), or one line
        saying what is wrong with the query or the language."""
        if not isinstance(text, str) or not text.strip():
            raise MlclipError("q: the query is empty: give the words to search for")
        if len(text) > self.config.max_query_chars:
            raise MlclipError(f"q: the query is {len(text)} characters long; at most {self.config.max_query_chars}")
        code = normalise_language(lang or AUTO)
        if code == AUTO or code in self.languages:
            return code
        try:
            return self.model.check_language(code)
        except MlclipError:
            pass
        from mlclip_cli.langid import check_languages

        try:
            check_languages([code], self.model.langid_backend)
        except MlclipError:
            raise MlclipError(f"lang: unknown language code {lang!r} (use auto or one of "
                              f"{', '.join(self.languages)})") from None
        raise MlclipError(f"lang: the model has no language pack for '{code}' (it has {', '.join(self.languages)}); "
                          "use auto or one of those")

    def check_k(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.config.max_k:
            raise MlclipError(f"k: a whole number from 1 to {self.config.max_k}, not {k!r}")
        return k

    def text(self, text: str, lang: str = AUTO, k: int | None = None) -> Future:
        """A future of the Answer to a text query; raises at once for a bad query, language or k."""
        job = _Job(self.check_k(k if k is not None else self.config.default_k), Future(),
                   text=text, lang=self.check_text(text, lang))
        self._queue.put(job)
        return job.future

    def image(self, image, k: int | None = None) -> Future:
        """A future of the Answer to an image query (`image`: a decoded PIL image)."""
        job = _Job(self.check_k(k if k is not None else self.config.default_k), Future(), image=image)
        self._queue.put(job)
        return job.future

    def warm_up(self) -> None:
        """One query of each kind through the worker, so the first user's query pays for no lazy
        loading (language ID's model, torch's first forward pass); neither counted nor cached."""
        from PIL import Image

        self._warming = True
        try:
            self.text("a picture", AUTO, 1).result()
            self.image(Image.new("RGB", (32, 32)), 1).result()
        finally:
            self._warming = False
        with self._lock:
            for key in self._counts:
                self._counts[key] = 0

    def stats(self) -> dict:
        with self._lock:
            counts = dict(self._counts)
        looked_up = counts["cache_hits"] + counts["cache_misses"]
        counts["cache_hit_rate"] = round(counts["cache_hits"] / looked_up, 4) if looked_up else 0.0
        counts["cache_size"] = len(self._cache)
        return counts

    def close(self, timeout: float = 5.0) -> None:
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout)

    # ------------------------------------------------------------------------------- the worker

    def _run(self) -> None:
        import faiss
        import torch

        from mlclip_cli.training.pretrain import attention_kernel

        torch.set_num_threads(self.config.torch_threads)  # the worker's own, and the process's intra-op pool
        faiss.omp_set_num_threads(self.config.torch_threads)
        # Held for the worker's life, so the encoders' own switch to this kernel (entered and left per
        # call, process-wide) only ever sets and restores the same choice while workers overlap.
        with attention_kernel(torch.device("cpu")):
            self._serve_jobs()

    def _serve_jobs(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            batch = [job]
            while len(batch) < self.config.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.append(more)
            with self._lock:
                self._counts["batches"] += 1
            texts = [j for j in batch if j.image is None]
            images = [j for j in batch if j.image is not None]
            if texts:
                self._guard(texts, self._answer_texts)
            for image_job in images:
                self._guard([image_job], self._answer_image)

    @staticmethod
    def _guard(jobs: list[_Job], answer) -> None:
        """Run `answer(jobs)`; an error fails those jobs' futures, never the worker."""
        try:
            answer(jobs)
        except Exception as exc:  # noqa: BLE001 - passed to the waiting request, which reports it
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)

    def _answer_texts(self, jobs: list[_Job]) -> None:
        vectors: list[np.ndarray | None] = [None] * len(jobs)
        detections: list[Detection | None] = [None] * len(jobs)
        cached = [False] * len(jobs)
        todo = []
        for i, job in enumerate(jobs):
            found = self._cached(job.text, job.lang)
            if found is not None:
                vectors[i], detections[i] = found
                cached[i] = True
                continue
            try:
                detections[i] = (self.model.detect_language([job.text])[0] if job.lang == AUTO
                                 else Detection(job.lang, 1.0))
            except MlclipError as exc:  # a text in no language the model has: this query fails, not the batch
                job.future.set_exception(exc)
                continue
            todo.append(i)
        if todo:
            encoded = self.model.encoder.encode_mixed([jobs[i].text for i in todo],
                                                      [detections[i].language for i in todo])
            for i, vector in zip(todo, np.asarray(encoded, dtype=np.float32)):
                vectors[i] = vector
                self._remember(jobs[i].text, jobs[i].lang, vector, detections[i])
        live = [i for i in range(len(jobs)) if vectors[i] is not None]
        if not live:
            return
        hits = self.index.search(np.stack([vectors[i] for i in live]), max(jobs[i].k for i in live))
        with self._lock:
            self._counts["queries"] += len(live)
        for i, found in zip(live, hits):
            d = detections[i]
            jobs[i].future.set_result(Answer(jobs[i].text, d.language, d.confidence, found[:jobs[i].k], cached[i]))

    def _answer_image(self, jobs: list[_Job]) -> None:
        (job,) = jobs
        hits = self.index.search(self.model.encode_image(job.image), job.k)[0]
        with self._lock:
            self._counts["queries"] += 1
            self._counts["image_queries"] += 1
        job.future.set_result(Answer("image", None, None, hits))

    def _cached(self, text: str, lang: str):
        if not self.config.cache_size or self._warming:
            return None
        key = (text, lang)
        with self._cache_lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
        with self._lock:
            self._counts["cache_hits" if found is not None else "cache_misses"] += 1
        return found

    def _remember(self, text: str, lang: str, vector: np.ndarray, detection: Detection) -> None:
        if not self.config.cache_size or self._warming:
            return
        with self._cache_lock:
            self._cache[(text, lang)] = (vector, detection)
            while len(self._cache) > self.config.cache_size:
                self._cache.popitem(last=False)


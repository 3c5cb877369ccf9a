"""Experience replay: a memory of captions from earlier tasks (an equal share of the budget per
task, with their teacher and image features) mixed into every batch."""

from __future__ import annotations

import numpy as np
import torch

from mlclip_cli.continual.learners import Batch, Learner, register


@register
class ExperienceReplay(Learner):
    name = "er"
    summary = "token embeddings + replayed captions of earlier languages"

    def __init__(self, settings):
        super().__init__(settings)
        self.tasks: list[dict] = []  # per earlier task: captions, languages, image_ids + tensors

    def replay(self, step, size, seed):
        if not self.tasks:
            return None
        memory = self._memory()
        count = max(1, int(size * self.settings.replay_fraction))
        pick = np.random.default_rng([seed, step, 7]).choice(len(memory.captions), size=min(count, len(memory.captions)),
                                                             replace=False)
        return Batch([memory.captions[i] for i in pick], memory.languages[pick], memory.teacher[pick],
                     memory.image[pick], memory.image_ids[pick])

    def _memory(self) -> Batch:
        parts = [Batch(t["captions"], t["languages"], t["teacher"], t["image"], t["image_ids"]) for t in self.tasks]
        memory = parts[0]
        for part in parts[1:]:
            memory = memory.cat(part)
        return memory

    def end_task(self, encoder, data, languages, task, gradient_of):
        keep = np.random.default_rng([task, 11]).permutation(len(data))[:self.settings.memory]
        self.tasks.append({"captions": [data.captions[i] for i in keep], "languages": data.languages[keep],
                           "teacher": torch.from_numpy(data.teacher[keep]), "image": torch.from_numpy(data.image[keep]),
                           "image_ids": data.image_ids[keep].astype(str)})
        share = self.settings.memory // len(self.tasks)  # the budget, split equally over the tasks so far
        for kept in self.tasks:
            for key in kept:
                kept[key] = kept[key][:share]

    def state(self):
        tensors, info = {}, {"tasks": []}
        for i, task in enumerate(self.tasks):
            tensors[f"{i}.teacher"], tensors[f"{i}.image"] = task["teacher"], task["image"]
            info["tasks"].append({"captions": task["captions"], "languages": task["languages"].tolist(),
                                  "image_ids": task["image_ids"].tolist()})
        return tensors, info

    def load_state(self, tensors, info):
        self.tasks = [{"captions": t["captions"], "languages": np.array(t["languages"]), "image_ids": np.array(t["image_ids"]),
                       "teacher": tensors[f"{i}.teacher"], "image": tensors[f"{i}.image"]}
                      for i, t in enumerate(info.get("tasks", []))]

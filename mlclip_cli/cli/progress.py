"""Rich progress displays over the library's callbacks: `progress(name, done, total)` for work
that counts items, `on_step(stage, step, total, loss)` for training."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from mlclip_cli.cli.console import out


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=out, transient=True)


def progress_callback(bar: Progress):
    tasks: dict[str, int] = {}

    def update(name: str, done: int, total: int) -> None:
        if name not in tasks:
            tasks[name] = bar.add_task(name, total=total)
        bar.update(tasks[name], completed=done)

    return update


def training_callbacks(bar: Progress, prefix: str):
    """on_step(stage, step, total, loss) and on_features(name, done, total) driving one rich
    Progress with a loss column: a bar per stage (named `prefix` + stage) and per feature part."""
    tasks: dict[str, int] = {}

    def on_step(stage: str, step: int, total: int, loss: float) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(f"{prefix}{stage}", total=total, loss=float("nan"))
        bar.update(tasks[stage], completed=step, loss=loss)

    def on_features(name: str, done: int, total: int) -> None:
        key = f"features {name} ({total})"  # train and val parts share names
        if key not in tasks:
            tasks[key] = bar.add_task(f"features {name}", total=total, loss=float("nan"))
        bar.update(tasks[key], completed=done)
    return on_step, on_features


def _loss_bars(*extra) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(), *extra, console=out)


def run_training_with_progress(run):
    """`run(on_features, on_step, on_eval)` (train, extend) with a bar per stage and validation lines."""
    with _loss_bars(TimeRemainingColumn()) as bar:
        on_step, on_features = training_callbacks(bar, "stage ")

        def on_eval(stage: str, step: int, val: dict) -> None:
            scores = " ".join(f"{lang} {m['image_retrieval_recall@1']:.1f}" for lang, m in val.items())
            bar.console.print(f"[dim]{stage} step {step}: val R@1[/] {scores}")
        return run(on_features, on_step, on_eval)


def run_sequence_with_progress(run):
    """`run(on_features, on_step, on_task)` (continual, a cll-clip extend): a bar per language."""
    with _loss_bars() as bar:
        on_step, on_features = training_callbacks(bar, "language ")

        def on_task(index: int, record) -> None:
            scores = " ".join(f"{lang} {m['image_retrieval_recall@1']:.1f}" for lang, m in record.scores.items())
            bar.console.print(f"[dim]after {'+'.join(record.languages)} ({record.seconds:.0f} s, "
                              f"{sum(record.new_tokens.values())} new tokens): R@1[/] {scores}")
        return run(on_features, on_step, on_task)


class StepDisplay:
    """One rich display for a run of many steps: the current step on the first line, the step's
    own progress (the library's `progress(name, done, total)` callbacks) on the second."""

    def __init__(self, title: str):
        from rich.progress import SpinnerColumn

        self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=out, transient=True)
        self._overall = self.bar.add_task(title, total=None)
        self._detail = self.bar.add_task("", total=None, visible=False)
        self._current: str | None = None

    def __enter__(self) -> "StepDisplay":
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def step(self, description: str, completed: int | None = None, total: int | None = None) -> None:
        self.bar.update(self._overall, description=description, completed=completed, total=total)
        self.bar.update(self._detail, visible=False)
        self._current = None

    def progress(self, name: str, done: int, total: int) -> None:
        if name != self._current:
            self._current = name
            self.bar.reset(self._detail, total=total, description=f"  {name}", visible=True)
        self.bar.update(self._detail, completed=done, total=total)

    def print(self, *args) -> None:
        self.bar.console.print(*args)

"""The pipeline's settings: defaults, validation (naming the bad option) and which affect output."""

from dataclasses import asdict, dataclass, fields

from preprocessing.abc_clean import Limits
from preprocessing.abc_tools import MIDI2ABC_FLAGS

# Settings that only change how the work is scheduled, not what it produces.
RUN_ONLY = ("num_cpus", "batch_size", "overwrite", "verify", "address", "quiet")


@dataclass(frozen=True)
class Settings:
    split: tuple = (0.98, 0.01, 0.01)
    timeout: float = 10.0
    midi2abc_flags: tuple = MIDI2ABC_FLAGS
    min_notes: int = Limits.min_notes
    min_bars: int = Limits.min_bars
    max_notes: int = Limits.max_notes
    max_bars: int = Limits.max_bars
    chunk_tokens: int = 2048
    min_count: int = 2
    max_vocab: int = 65535
    num_cpus: int | None = None
    batch_size: int = 1000
    address: str | None = None
    overwrite: bool = False
    verify: bool = False  # on a rerun, judge inputs by the md5 of their bytes, not their size and time
    quiet: bool = False

    @classmethod
    def from_kwargs(cls, **kwargs):
        known = {f.name for f in fields(cls)}
        for name in kwargs:
            if name not in known:
                raise ValueError(f"unknown setting {name!r} (known: {', '.join(sorted(known))})")
        if "split" in kwargs:
            kwargs["split"] = parse_split(kwargs["split"])
        if "midi2abc_flags" in kwargs and isinstance(kwargs["midi2abc_flags"], str):
            kwargs["midi2abc_flags"] = tuple(kwargs["midi2abc_flags"].split())
        settings = cls(**kwargs)
        settings.validate()
        return settings

    def validate(self):
        def need(condition, name, rule):
            if not condition:
                raise ValueError(f"setting {name}={getattr(self, name)!r} (--{name.replace('_', '-')}): {rule}")

        need(len(self.split) == 3 and all(f > 0 for f in self.split) and abs(sum(self.split) - 1) < 1e-6, "split",
             "three fractions train,val,test, each > 0 (a sweep validates on val and tests on test), summing to 1")
        need(self.timeout > 0, "timeout", "must be > 0 seconds")
        need(all(isinstance(flag, str) for flag in self.midi2abc_flags), "midi2abc_flags", "must be strings")
        for name in ("min_notes", "min_bars", "max_notes", "max_bars"):
            need(isinstance(getattr(self, name), int) and getattr(self, name) >= 0, name, "an integer >= 0")
        need(self.max_notes >= self.min_notes, "max_notes", "must be >= min_notes")
        need(self.max_bars >= self.min_bars, "max_bars", "must be >= min_bars")
        need(isinstance(self.chunk_tokens, int) and self.chunk_tokens >= 64, "chunk_tokens", "an integer >= 64")
        need(isinstance(self.min_count, int) and self.min_count >= 1, "min_count", "an integer >= 1")
        need(isinstance(self.max_vocab, int) and 3 <= self.max_vocab <= 65535, "max_vocab",
             "between 3 and 65535 (ids are uint16)")
        need(self.num_cpus is None or (isinstance(self.num_cpus, int) and self.num_cpus >= 1),
             "num_cpus", "an integer >= 1")
        need(isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size", "an integer >= 1")

    @property
    def limits(self):
        return Limits(self.min_notes, self.min_bars, self.max_notes, self.max_bars)

    def output_affecting(self):
        """The settings recorded in meta.json and compared when resuming."""
        values = asdict(self)
        for name in RUN_ONLY:
            values.pop(name)
        values["split"] = list(self.split)
        values["midi2abc_flags"] = list(self.midi2abc_flags)
        return values


def parse_split(value):
    if isinstance(value, str):
        try:
            value = [float(part) for part in value.split(",")]
        except ValueError:
            raise ValueError(f"setting split={value!r} (--split): three comma-separated fractions, e.g. 0.98,0.01,0.01")
    return tuple(float(f) for f in value)

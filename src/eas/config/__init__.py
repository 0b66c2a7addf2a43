"""Settings, one frozen dataclass per concern; every default lives here, once.

Each field is a ``setting(default, help, ...)``: its description is the ``help`` of its
metadata, which is also the help of the command-line option ``eas.cli.options`` builds
from it (``flag`` names the option when ``--field-name`` does not fit), so neither the
default nor its description is written a second time.
"""

from eas.config.fields import DEFAULT_MODEL, DTYPES, Attention, End, HeadProducts, Layout, Method, setting
from eas.config.generation import EVALUATION_SAMPLING, MonitorConfig, SamplingConfig, TrainConfig
from eas.config.scoring import (
    CPU_BATCH_TOKENS,
    CPU_CHUNK_PROBES,
    CPU_PREFILL_TOKENS,
    GPU_BATCH_TOKENS,
    GPU_MAX_PROBE_TOKENS,
    GPU_MEMORY_FRACTION,
    GPU_PREFILL_TOKENS,
    MIN_CALIBRATION,
    AmortisedConfig,
    EASConfig,
    EngineConfig,
    ModelOptions,
    ServerConfig,
)
from eas.config.view import ViewConfig

__all__ = [
    "CPU_BATCH_TOKENS",
    "CPU_CHUNK_PROBES",
    "CPU_PREFILL_TOKENS",
    "DEFAULT_MODEL",
    "DTYPES",
    "EVALUATION_SAMPLING",
    "GPU_BATCH_TOKENS",
    "GPU_MAX_PROBE_TOKENS",
    "GPU_MEMORY_FRACTION",
    "GPU_PREFILL_TOKENS",
    "MIN_CALIBRATION",
    "AmortisedConfig",
    "Attention",
    "EASConfig",
    "End",
    "EngineConfig",
    "HeadProducts",
    "Layout",
    "Method",
    "ModelOptions",
    "MonitorConfig",
    "SamplingConfig",
    "ServerConfig",
    "TrainConfig",
    "ViewConfig",
    "setting",
]

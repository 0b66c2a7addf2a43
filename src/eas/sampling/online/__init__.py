"""Online EAS: forced-answer entropy at every generated token, while the model writes (docs/online.md).

* ``stream(backend, prompt)``: one answer, token by token, with H_t and the area so far;
* ``sample_questions_online``: n monitored answers per question, with their figures
  (``eas sample --monitor``, ``eas study --online``);
* ``BatchMonitor``: the per-batch ``Watch`` both use (``eas.backends.watch``).
"""

from eas.sampling.online.monitor import BatchMonitor, TokenEvent
from eas.sampling.online.rows import OnlineSample
from eas.sampling.online.sample import monitor_batch, sample_questions_online
from eas.sampling.online.setup import OnlineSetup, online_setup
from eas.sampling.online.stream import OnlineStream, stream

__all__ = [
    "BatchMonitor",
    "OnlineSample",
    "OnlineSetup",
    "OnlineStream",
    "TokenEvent",
    "monitor_batch",
    "online_setup",
    "sample_questions_online",
    "stream",
]

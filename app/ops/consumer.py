"""huey's consumer with Nube's monitor beside its workers (`huey_consumer app.worker.huey`).

The monitor used to be a periodic task: it waited for a free worker, so while every worker ran
long operations (graceful stops, a drain, an image build) no host was polled and no dead
worker's operation was recovered. Here it is one more of the consumer's processes (a thread with
`-k thread`), started and stopped with the workers and the scheduler, and restarted by huey's
health check like them. `-n` (no periodic tasks) starts no monitor.
"""

import logging

from huey import Huey
from huey.consumer import Consumer

log = logging.getLogger(__name__)

STOP_WAIT = 15.0  # seconds a stopping consumer waits for the monitor's turn to end
# huey's idle workers back off up to 10 s between polls of the queue, so an action clicked on
# an idle controller waited 5-6 s as pending; a poll of the queue's table is cheap.
IDLE_POLL_MAX = 0.25


class MonitoredConsumer(Consumer):
    """huey's consumer, plus the monitor (made by `make_monitor(stop_flag)`) when periodic."""

    def __init__(self, huey, make_monitor=None, **options):
        super().__init__(huey, **options)
        self._make_monitor = make_monitor if self.periodic else None
        self.monitor = self._create_monitor()

    def _create_monitor(self):
        """The monitor's process (thread), not started; None without one."""
        if self._make_monitor is None:
            return None
        return self._create_process(self._make_monitor(self.stop_flag), "Monitor")

    def start(self):
        """Start the scheduler and workers, then the monitor."""
        super().start()
        if self.monitor is not None:
            self.monitor.start()

    def stop(self, graceful=False):
        """Stop as huey does; the monitor sees the stop flag and gives its lease back."""
        super().stop(graceful)
        if self.monitor is not None:
            self.monitor.join(STOP_WAIT)

    def check_worker_health(self):
        """huey's health check, and a monitor that died is started again."""
        healthy = super().check_worker_health()
        alive = self.monitor is None or self.environment.is_alive(self.monitor)
        if not alive and not self.stop_flag.is_set():
            log.warning("Monitor died, restarting.")
            self.monitor = self._create_monitor()
            self.monitor.start()
        return healthy


class NubeHuey(Huey):
    """A huey instance whose consumer runs Nube's monitor too (`make_monitor` set by the app)."""

    make_monitor = None

    def create_consumer(self, **options):
        """The consumer `huey_consumer` runs; idle workers look for work at least every
        IDLE_POLL_MAX seconds, whatever -m says."""
        options["max_delay"] = min(options.get("max_delay") or IDLE_POLL_MAX, IDLE_POLL_MAX)
        options["initial_delay"] = min(options.get("initial_delay") or 0.1, IDLE_POLL_MAX)
        return MonitoredConsumer(self, self.make_monitor, **options)

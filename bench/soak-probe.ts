// Loaded into the proxy's own process by the soak (`node --import .../soak-probe.js dist/src/cli/main.js`):
// every second it sends the process's memory and event-loop delay to the soak over the IPC channel. The
// proxy itself is unchanged; nothing runs when there is no IPC channel.
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** What the probe reports each second. */
export interface ProbeReport {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** Event-loop delay over the last second, in milliseconds. */
  loopDelayP99: number;
  loopDelayMax: number;
}

if (process.send) {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const timer = setInterval(() => {
    const memory = process.memoryUsage();
    const report: ProbeReport = {
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      heapTotal: memory.heapTotal,
      external: memory.external,
      arrayBuffers: memory.arrayBuffers,
      loopDelayP99: delay.percentile(99) / 1e6,
      loopDelayMax: delay.max / 1e6,
    };
    delay.reset();
    process.send?.({ soakProbe: report });
  }, 1000);
  // Neither the timer nor the channel may keep the proxy alive once it stops.
  timer.unref();
  process.channel?.unref();
}

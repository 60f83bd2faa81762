import { monitorEventLoopDelay } from 'node:perf_hooks';

const BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

type Labels = Record<string, string>;
const braces = (k: string) => (k ? `{${k}}` : '');
const key = (labels: Labels) => Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',');

/** In-process counters and histograms, rendered in the Prometheus text format. */
export class Metrics {
  private counters = new Map<string, Map<string, number>>();
  private histograms = new Map<string, Map<string, { buckets: number[]; sum: number; count: number }>>();
  private help = new Map<string, string>();
  private loopDelay = monitorEventLoopDelay({ resolution: 10 });

  constructor() {
    this.loopDelay.enable();
  }

  inc(name: string, help: string, labels: Labels, by = 1): void {
    this.help.set(name, help);
    const series = this.counters.get(name) ?? new Map<string, number>();
    this.counters.set(name, series);
    const k = key(labels);
    series.set(k, (series.get(k) ?? 0) + by);
  }

  observe(name: string, help: string, labels: Labels, seconds: number): void {
    this.help.set(name, help);
    const series = this.histograms.get(name) ?? new Map();
    this.histograms.set(name, series);
    const k = key(labels);
    const h = series.get(k) ?? { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 };
    BUCKETS.forEach((b, i) => seconds <= b && h.buckets[i]++);
    h.sum += seconds;
    h.count++;
    series.set(k, h);
  }

  /** The text exposition, with gauges computed at scrape time appended. */
  render(gauges: { name: string; help: string; samples: [Labels, number][] }[]): string {
    const lines: string[] = [];
    for (const [name, series] of this.counters) {
      lines.push(`# HELP ${name} ${this.help.get(name)}`, `# TYPE ${name} counter`);
      for (const [k, v] of series) lines.push(`${name}${braces(k)} ${v}`);
    }
    for (const [name, series] of this.histograms) {
      lines.push(`# HELP ${name} ${this.help.get(name)}`, `# TYPE ${name} histogram`);
      for (const [k, h] of series) {
        const sep = k ? ',' : '';
        BUCKETS.forEach((b, i) => lines.push(`${name}_bucket{${k}${sep}le="${b}"} ${h.buckets[i]}`));
        lines.push(`${name}_bucket{${k}${sep}le="+Inf"} ${h.count}`, `${name}_sum${braces(k)} ${h.sum}`, `${name}_count${braces(k)} ${h.count}`);
      }
    }
    const all = [
      ...gauges,
      { name: 'sandboxd_event_loop_delay_p99_seconds', help: 'p99 event-loop delay of the main thread since start.', samples: [[{}, this.loopDelay.percentile(99) / 1e9]] as [Labels, number][] },
      { name: 'sandboxd_resident_memory_bytes', help: 'Resident set size of the daemon.', samples: [[{}, process.memoryUsage.rss()]] as [Labels, number][] },
    ];
    for (const g of all) {
      lines.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} gauge`);
      for (const [labels, v] of g.samples) lines.push(`${g.name}${braces(key(labels))} ${v}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

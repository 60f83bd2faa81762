import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../tests/support/daemon.ts';
import { benchCreate } from './create.ts';
import { benchDensity } from './density.ts';
import { benchExec } from './exec.ts';
import { benchGateway } from './gateway.ts';
import { benchHostile } from './hostile.ts';
import type { BenchSection } from './stats.ts';
import { benchTasks } from './tasks.ts';

/**
 * Runs every benchmark against real daemons on this machine and rewrites docs/benchmarks.md.
 * Usage: npm run bench   (BENCH_N sets the sample count of the sequential figures; default 30)
 */
const n = Number(process.env.BENCH_N ?? 30);
const command = 'npm run bench';

const fmt = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));

function machine(): string {
  const engine = execFileSync('docker', ['version', '-f', '{{.Server.Version}}']).toString().trim();
  return `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${release()}, Docker Engine ${engine}, Node ${process.versions.node}`;
}

function render(sections: BenchSection[], started: Date): string {
  const out = [
    '# Benchmarks',
    '',
    'Every figure is measured against a baseline taken in the same run on the same machine; the ratio is',
    'ours ÷ baseline of the medians (below 1 means faster than the baseline). Times in milliseconds.',
    '',
    `- Command: \`${command}\` (BENCH_N=${n})`,
    `- Date: ${started.toISOString()}`,
    `- Machine: ${machine()}`,
    '',
  ];
  for (const s of sections) {
    out.push(`## ${s.title}`, '', '| figure | median | p99 | baseline | baseline median | baseline p99 | ratio |', '|---|---:|---:|---|---:|---:|---:|');
    for (const r of s.rows) {
      out.push(`| ${r.figure} | ${fmt(r.value.median)} | ${fmt(r.value.p99)} | ${r.baseline} | ${fmt(r.baselineValue.median)} | ${fmt(r.baselineValue.p99)} | ${r.ratio.toFixed(2)} |`);
    }
    out.push('', ...s.notes.map((note) => `- ${note}`), '');
  }
  return out.join('\n');
}

const started = new Date();
const sections: BenchSection[] = [];
for (const [name, bench] of [
  ['create', () => benchCreate({ n })],
  ['exec', () => benchExec({ n, streams: 50, loadMs: 8000 })],
  ['gateway', () => benchGateway({ wakeN: Math.min(n, 20), loadMs: 5000, concurrency: 16, rate: 300 })],
  ['hostile', () => benchHostile({ loadMs: 8000, clients: 4 })],
  ['tasks', () => benchTasks({ tasks: 10, lines: 200, everyMs: 25, streams: 50 })],
  ['density', () => benchDensity({ total: 500, running: 50, listN: 200 })],
] as const) {
  process.stdout.write(`==> ${name}\n`);
  const section = await bench();
  for (const r of section.rows) process.stdout.write(`    ${r.figure}: median ${fmt(r.value.median)} ms, p99 ${fmt(r.value.p99)} ms; baseline ${fmt(r.baselineValue.median)} ms; ratio ${r.ratio.toFixed(2)}\n`);
  sections.push(section);
}
// Figures that cannot be re-measured on every run (a clean-machine install) live below this marker and are kept.
const MARKER = '<!-- measured by hand: kept by npm run bench -->';
const file = join(ROOT, 'docs/benchmarks.md');
const kept = existsSync(file) ? readFileSync(file, 'utf8').split(MARKER)[1] : undefined;
writeFileSync(file, render(sections, started) + (kept !== undefined ? `\n${MARKER}${kept}` : ''));
process.stdout.write('wrote docs/benchmarks.md\n');

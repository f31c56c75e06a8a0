/**
 * The result rows every suite returns, how a row is judged against its target, and the one table
 * `npm run bench` prints (markdown, so it can be pasted into docs/benchmarks.md as is).
 */

/** `tasks` and `processes` are counts (the soak's checks and cold starts). */
export type Unit = 'ms' | 'tasks/s' | 'MB' | 'tasks' | 'processes';

/**
 * A target from issue 5. `ratio-max`/`ratio-min` compare boocoder to the peer measured in the same
 * run (boocoder / peer); `abs-max` is an absolute bound on boocoder's own number; `exact` is a
 * number boocoder must hit, such as zero lost tasks in the soak.
 */
export type Target =
  | { kind: 'ratio-max'; value: number }
  | { kind: 'ratio-min'; value: number }
  | { kind: 'abs-max'; value: number }
  | { kind: 'exact'; value: number };

export interface Metric {
  /** Stable key, e.g. `pickup.pg.p50`: the JSON output is compared across runs by it. */
  id: string;
  label: string;
  unit: Unit;
  /** Null when there is nothing honest to report yet; `pending` then says why. */
  boocoder: number | null;
  peer: number | null;
  /** What the peer column is, e.g. `graphile-worker 0.18.0`. */
  peerName?: string;
  target?: Target;
  pending?: string;
  /** Extra numbers kept in the JSON only (sample counts, p90, min/max...). */
  detail?: Record<string, unknown>;
}

export type Verdict = 'yes' | 'NO' | 'n/a' | 'pending';

export function ratioOf(m: Metric): number | null {
  if (m.boocoder === null || m.peer === null || m.peer === 0) return null;
  return m.boocoder / m.peer;
}

export function verdictOf(m: Metric): Verdict {
  if (m.boocoder === null) return m.target ? 'pending' : 'n/a';
  if (!m.target) return 'n/a';
  if (m.target.kind === 'abs-max') return m.boocoder <= m.target.value ? 'yes' : 'NO';
  if (m.target.kind === 'exact') return m.boocoder === m.target.value ? 'yes' : 'NO';
  const ratio = ratioOf(m);
  if (ratio === null) return 'pending';
  return (m.target.kind === 'ratio-max' ? ratio <= m.target.value : ratio >= m.target.value) ? 'yes' : 'NO';
}

export function describeTarget(m: Metric): string {
  if (!m.target) return '—';
  switch (m.target.kind) {
    case 'ratio-max':
      return `≤ ${m.target.value}×`;
    case 'ratio-min':
      return `≥ ${m.target.value}×`;
    case 'abs-max':
      return `< ${m.target.value} ${m.unit}`;
    case 'exact':
      return `= ${m.target.value} ${m.unit}`;
  }
}

/** Decimals shown: enough to tell small values apart, none where they would only be noise. */
function decimalsFor(value: number, unit: Unit): number {
  if (unit === 'ms') return value < 10 ? 2 : value < 100 ? 1 : 0;
  if (unit === 'MB') return 1;
  if (unit === 'tasks/s') return value < 100 ? 1 : 0;
  return 0;
}

function formatValue(value: number | null, unit: Unit): string {
  if (value === null) return '—';
  return `${value.toFixed(decimalsFor(value, unit))} ${unit}`;
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** One markdown table: metric, boocoder, peer, ratio, target, met? */
export function formatTable(metrics: readonly Metric[]): string {
  const header = ['metric', 'boocoder', 'peer', 'ratio', 'target', 'met?'];
  const rows = metrics.map((m) => {
    const ratio = ratioOf(m);
    const peer = m.peer === null ? '—' : `${formatValue(m.peer, m.unit)} (${m.peerName ?? 'peer'})`;
    return [
      m.label,
      m.boocoder === null ? (m.pending ?? '—') : formatValue(m.boocoder, m.unit),
      peer,
      ratio === null ? '—' : `${ratio.toFixed(2)}×`,
      describeTarget(m),
      verdictOf(m),
    ].map(escapeCell);
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

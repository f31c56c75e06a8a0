/**
 * A transcript as readable markdown (the resource boocoder://tasks/{id}/transcript), and the gaps a
 * page of events has: where the middle of a long transcript was cut. Pure.
 */
import type { TaskEventRow } from '../db/task-events.js';

export interface TranscriptGap {
  afterSeq: number;
  beforeSeq: number;
  missing: number;
}

/** Gaps in seq between `afterSeq` (the page's start) and each event. */
export function gapsOf(events: readonly TaskEventRow[], afterSeq: number): TranscriptGap[] {
  const gaps: TranscriptGap[] = [];
  let previous = afterSeq;
  for (const e of events) {
    if (e.seq > previous + 1)
      gaps.push({ afterSeq: previous, beforeSeq: e.seq, missing: e.seq - previous - 1 });
    previous = e.seq;
  }
  return gaps;
}

type Data = Record<string, unknown>;
const s = (v: unknown): string => (typeof v === 'string' ? v : '');
const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
/** Agent text must not open a fence the markdown then cannot close. */
const quote = (text: string) => text.replace(/```/g, "'''");

function toolLine(d: Data): string {
  const parts = [s(d.toolKind) || 'tool', s(d.title)].filter(Boolean);
  const paths = list(d.paths);
  let line = `- **${parts.join(': ')}**`;
  if (paths.length > 0) line += ` — ${paths.map((p) => `\`${p}\``).join(', ')}`;
  if (d.command) line += `\n  \`$ ${s(d.command).replace(/`/g, "'")}\``;
  const status = [s(d.status), typeof d.exitCode === 'number' ? `exit ${d.exitCode}` : ''].filter(Boolean);
  if (status.length > 0) line += ` (${status.join(', ')})`;
  return line;
}

function eventBlock(e: TaskEventRow): string {
  const d = e.data;
  switch (e.kind) {
    case 'message':
      return `${quote(s(d.text))}${d.truncated ? '\n\n*(message truncated)*' : ''}`;
    case 'thought':
      return `> *thinking:* ${quote(s(d.text)).replace(/\n/g, '\n> ')}`;
    case 'plan': {
      const entries = Array.isArray(d.entries) ? (d.entries as Data[]) : [];
      return [
        '**Plan**',
        ...entries.map((x) => `- [${x.status === 'completed' ? 'x' : ' '}] ${s(x.content)}`),
      ].join('\n');
    }
    case 'tool':
      return toolLine(d);
    case 'permission':
      return `- **permission asked**: ${s(d.title)}${list(d.paths).length ? ` — ${list(d.paths).join(', ')}` : ''} → ${s(d.outcome)}`;
    case 'usage': {
      const bits = [
        typeof d.inputTokens === 'number' ? `${d.inputTokens} tokens in` : '',
        typeof d.outputTokens === 'number' ? `${d.outputTokens} out` : '',
        typeof d.cost === 'number' ? `${d.cost} ${s(d.currency)}` : '',
      ].filter(Boolean);
      return `*usage: ${bits.join(', ')}*`;
    }
    case 'error':
      return `**error:** ${quote(s(d.message))}`;
    default:
      return `*${e.kind}*`;
  }
}

export function transcriptMarkdown(
  task: { id: string; state: string; agent: string | null; nowDoing: string | null },
  events: readonly TaskEventRow[],
  more: boolean,
): string {
  const head = [`# Task ${task.id}`, '', `state: ${task.state}; agent: ${task.agent ?? 'default'}`];
  if (task.state === 'running' && task.nowDoing) head.push(`now: ${task.nowDoing}`);
  const out = [head.join('\n')];
  if (events.length === 0) out.push('*(no events recorded)*');
  let previous = 0;
  for (const e of events) {
    if (e.seq > previous + 1)
      out.push(
        `*… ${e.seq - previous - 1} events cut here (a transcript keeps its first and last events) …*`,
      );
    out.push(eventBlock(e));
    previous = e.seq;
  }
  if (more) out.push(`*… more events: read them with get_transcript {after: ${previous}} …*`);
  return `${out.join('\n\n')}\n`;
}

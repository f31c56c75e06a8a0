/**
 * The native agent's tools, vendor-neutral (a name, a description, a JSON schema) and their
 * execution in the worktree. Every path goes through the path policy captures and applies use
 * (worktrees/path-policy.ts): relative to the worktree, no `..`, nothing in `.git`, and no symlink
 * on the way (a planted `src -> /etc` would turn a write of `src/passwd` into one outside).
 */
import { mkdir, readdir, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { BoocoderError } from '../../errors.js';
import { assertNoSymlinkInPath, assertSafeRepoPath, isGitFolderName } from '../../worktrees/path-policy.js';
import { type CommandRunner, runCommand } from './command.js';

export interface NativeTool {
  name: string;
  description: string;
  parameters: { type: 'object'; properties: Record<string, object>; required: string[] };
  /** Changes the worktree or runs a program: goes through the permission policy first. */
  acts: 'read' | 'edit' | 'delete' | 'execute';
}

const str = (description: string) => ({ type: 'string', description });
const tool = (
  name: string,
  acts: NativeTool['acts'],
  description: string,
  props: Record<string, object>,
) => ({
  name,
  acts,
  description,
  parameters: { type: 'object' as const, properties: props, required: Object.keys(props) },
});

export const NATIVE_TOOLS: readonly NativeTool[] = [
  tool('read_file', 'read', 'Read a file of the worktree.', { path: str('path relative to the worktree') }),
  tool('list_files', 'read', 'List the files under a folder of the worktree ("." for all).', {
    folder: str('folder relative to the worktree'),
  }),
  tool('search', 'read', 'Find the lines containing a text in the worktree files.', {
    text: str('the exact text to find'),
  }),
  tool('write_file', 'edit', 'Create or overwrite a file with the given content.', {
    path: str('path relative to the worktree'),
    content: str('the whole new content'),
  }),
  tool('edit_file', 'edit', 'Replace one exact occurrence of old_string by new_string in a file.', {
    path: str('path relative to the worktree'),
    old_string: str('text that occurs exactly once'),
    new_string: str('its replacement'),
  }),
  tool('delete_file', 'delete', 'Delete a file of the worktree.', {
    path: str('path relative to the worktree'),
  }),
  tool('run_command', 'execute', 'Run a shell command in the worktree; prints its exit code and output.', {
    command: str('the command for /bin/sh -c'),
  }),
];

const MAX_READ_BYTES = 256 * 1024;
const MAX_LIST = 2000;
const MAX_HITS = 200;

export interface ToolContext {
  /** The worktree's realpath. */
  root: string;
  commands: CommandRunner;
}

/** The worktree-relative path a tool was given (absolute paths inside the worktree are accepted). */
export async function safePath(
  ctx: Pick<ToolContext, 'root'>,
  input: unknown,
): Promise<{ rel: string; abs: string }> {
  if (typeof input !== 'string') throw new BoocoderError('E_INVALID_INPUT', 'the tool needs a path string');
  const given = isAbsolute(input) ? relative(ctx.root, input) : input;
  const rel = assertSafeRepoPath(given);
  await assertNoSymlinkInPath(ctx.root, rel);
  return { rel, abs: join(ctx.root, rel) };
}

async function walk(root: string, folder: string, out: string[]): Promise<void> {
  const entries = await readdir(join(root, folder), { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (out.length >= MAX_LIST) return;
    if (isGitFolderName(e.name)) continue;
    const rel = folder ? `${folder}/${e.name}` : e.name;
    // Symlinks are listed, never followed: a link to `/` would list the host.
    if (e.isDirectory()) await walk(root, rel, out);
    else out.push(rel);
  }
}

function arg(args: Record<string, unknown>, key: string): string {
  const v = args[key];
  if (typeof v !== 'string')
    throw new BoocoderError('E_INVALID_INPUT', `the tool needs "${key}" as a string`);
  return v;
}

/** Runs one tool call; its result text goes back to the model. Errors are the model's to read. */
export async function runTool(
  ctx: ToolContext,
  name: string,
  args: Record<string, unknown>,
): Promise<string> {
  switch (name) {
    case 'read_file': {
      const { abs } = await safePath(ctx, args.path);
      const data = await readFile(abs);
      const text = data.subarray(0, MAX_READ_BYTES).toString('utf8');
      return data.length > MAX_READ_BYTES ? `${text}\n[truncated at ${MAX_READ_BYTES} bytes]` : text;
    }
    case 'list_files': {
      const folder = arg(args, 'folder');
      const rel = folder === '.' || folder === '' ? '' : (await safePath(ctx, folder)).rel;
      const out: string[] = [];
      await walk(ctx.root, rel, out);
      return out.length ? out.join('\n') : '(no files)';
    }
    case 'search': {
      const text = arg(args, 'text');
      const files: string[] = [];
      await walk(ctx.root, '', files);
      const hits: string[] = [];
      for (const f of files) {
        if (hits.length >= MAX_HITS) break;
        const abs = join(ctx.root, f);
        const st = await stat(abs).catch(() => null);
        if (!st?.isFile() || st.size > MAX_READ_BYTES) continue;
        (await readFile(abs, 'utf8')).split('\n').forEach((line, i) => {
          if (line.includes(text) && hits.length < MAX_HITS)
            hits.push(`${f}:${i + 1}: ${line.slice(0, 300)}`);
        });
      }
      return hits.length ? hits.join('\n') : 'no match';
    }
    case 'write_file': {
      const { rel, abs } = await safePath(ctx, args.path);
      await mkdir(dirname(abs), { recursive: true });
      await writeFile(abs, arg(args, 'content'));
      return `wrote ${rel}`;
    }
    case 'edit_file': {
      const { rel, abs } = await safePath(ctx, args.path);
      const before = await readFile(abs, 'utf8');
      const oldText = arg(args, 'old_string');
      const count = oldText ? before.split(oldText).length - 1 : 0;
      if (count !== 1) return `error: old_string occurs ${count} times in ${rel}; it must occur exactly once`;
      await writeFile(
        abs,
        before.replace(oldText, () => arg(args, 'new_string')),
      );
      return `edited ${rel}`;
    }
    case 'delete_file': {
      const { rel, abs } = await safePath(ctx, args.path);
      await rm(abs);
      return `deleted ${rel}`;
    }
    case 'run_command':
      return runCommand(ctx.commands, arg(args, 'command'));
    default:
      return `error: unknown tool "${name}"; the tools are ${NATIVE_TOOLS.map((t) => t.name).join(', ')}`;
  }
}

/** The worktree's realpath: symlink checks compare against it. */
export function worktreeRoot(cwd: string): Promise<string> {
  return realpath(cwd);
}

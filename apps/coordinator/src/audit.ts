/**
 * The append-only audit log (JSONL): one line per event, never rewritten. Each line carries the sha256
 * of the previous line (`prev`), so a removed or edited line breaks the chain (`verifyAuditLog`).
 *
 * Rotation: once `audit.jsonl` would pass `maxBytes`, it is renamed `audit.<first seq, 12 digits>.jsonl`
 * and a new `audit.jsonl` starts; its first line's `prev` is the hash of the old file's last line, so the
 * chain runs on across files (`verifyAuditLog(dir)` checks all of them in order). Start-up reads only the
 * tail of the current file (the last entries, for `seq`, `prev` and the dashboard), never the whole log:
 * a log of any size starts in constant time and memory.
 */
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  statSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { FedcxrError } from '@fedcxr/core';

export interface AuditEntry {
  seq: number;
  time: string;
  event: string;
  prev: string;
  [field: string]: unknown;
}

export interface AuditOptions {
  /** Entries kept in memory for the dashboard (refusals are kept apart, see `recentRefusals`). */
  keepRecent?: number;
  /** Rotate once the current file would exceed this (bytes). */
  maxBytes?: number;
}

const GENESIS = '0'.repeat(64);
const TAIL_BLOCK = 64 * 1024;
const TAIL_MAX = 16 * 1024 * 1024;
/** Events of refused attempts: the dashboard shows them apart, so a flood cannot push real events out. */
export const REFUSAL_EVENTS: ReadonlySet<string> = new Set([
  'auth_refused',
  'admin_refused',
  'login_refused',
  'dashboard_refused',
  'http_refused',
  'tls_refused',
  'refusals_summarised',
]);

export class AuditLog {
  private seq = 0;
  private prev = GENESIS;
  private bytes = 0;
  /** seq of the current file's first entry (names the file when it rotates). */
  private firstSeq = 1;
  readonly recent: AuditEntry[] = [];
  readonly recentRefusals: AuditEntry[] = [];
  private readonly keepRecent: number;
  private readonly maxBytes: number;

  constructor(
    readonly path: string,
    options: AuditOptions | number = {},
  ) {
    const o = typeof options === 'number' ? { keepRecent: options } : options;
    this.keepRecent = o.keepRecent ?? 200;
    this.maxBytes = o.maxBytes ?? 64 * 1024 * 1024;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    let tail = existsSync(path) ? readTail(path, this.keepRecent * 4) : { lines: [], size: 0, first: undefined };
    this.bytes = tail.size;
    if (tail.lines.length === 0) {
      // A fresh current file after a rotation: the chain goes on from the last rotated file.
      const rotated = rotatedFiles(path);
      const last = rotated[rotated.length - 1];
      if (last) tail = { ...readTail(last, this.keepRecent * 4), size: 0, first: undefined };
    }
    for (const line of tail.lines) this.remember(parseLine(line, path));
    const lastLine = tail.lines[tail.lines.length - 1];
    if (lastLine) {
      this.seq = parseLine(lastLine, path).seq;
      this.prev = sha256(lastLine);
    }
    this.firstSeq = tail.first ? parseLine(tail.first, path).seq : this.seq + 1;
  }

  /** Appends synchronously (O_APPEND), so the entry is in the file before the caller acknowledges anything. */
  append(event: string, fields: Record<string, unknown> = {}): AuditEntry {
    const entry: AuditEntry = { seq: ++this.seq, time: new Date().toISOString(), event, ...fields, prev: this.prev };
    const line = JSON.stringify(entry);
    const size = Buffer.byteLength(line) + 1;
    if (this.bytes > 0 && this.bytes + size > this.maxBytes) this.rotate();
    appendFileSync(this.path, `${line}\n`, { flag: 'a', mode: 0o600 });
    this.bytes += size;
    this.prev = sha256(line);
    this.remember(entry);
    return entry;
  }

  private rotate(): void {
    renameSync(this.path, rotatedName(this.path, this.firstSeq));
    this.bytes = 0;
    this.firstSeq = this.seq;
  }

  private remember(entry: AuditEntry): void {
    const list = REFUSAL_EVENTS.has(entry.event) ? this.recentRefusals : this.recent;
    list.push(entry);
    if (list.length > this.keepRecent) list.shift();
  }
}

function parseLine(line: string, path: string): AuditEntry {
  try {
    return JSON.parse(line) as AuditEntry;
  } catch {
    throw new FedcxrError('audit_corrupt', 'audit log has a line that is not JSON', { file: path });
  }
}

function rotatedName(path: string, firstSeq: number): string {
  const name = basename(path).replace(/\.jsonl$/, '');
  return join(dirname(path), `${name}.${String(firstSeq).padStart(12, '0')}.jsonl`);
}

/** Rotated files of `path`, oldest first. */
export function rotatedFiles(path: string): string[] {
  const dir = dirname(path);
  const name = basename(path).replace(/\.jsonl$/, '');
  if (!existsSync(dir)) return [];
  const pattern = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.\\d{12}\\.jsonl$`);
  return readdirSync(dir)
    .filter((f) => pattern.test(f))
    .sort()
    .map((f) => join(dir, f));
}

/** The last `count` complete lines of a file, its size and its first line, read from the end in blocks. */
function readTail(path: string, count: number): { lines: string[]; size: number; first: string | undefined } {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const blocks: Buffer[] = [];
    let position = size;
    let newlines = 0;
    // Bounded: a log whose tail holds no complete lines (a zero-filled hole, one giant line) stops here.
    const floor = Math.max(0, size - TAIL_MAX);
    while (position > floor && newlines <= count) {
      const length = Math.min(TAIL_BLOCK, position - floor);
      position -= length;
      const block = Buffer.alloc(length);
      readSync(fd, block, 0, length, position);
      for (const byte of block) if (byte === 10) newlines++;
      blocks.unshift(block);
    }
    const text = Buffer.concat(blocks).toString('utf8');
    let lines = text.split('\n');
    if (position > 0) lines = lines.slice(1); // the first piece may be a partial line
    lines = lines.filter((l) => l.length > 0 && l.charCodeAt(0) === 123); // '{': skips zero-filled holes
    let first: string | undefined;
    if (position === 0) first = lines[0];
    else {
      const head = Buffer.alloc(Math.min(TAIL_BLOCK, size));
      readSync(fd, head, 0, head.length, 0);
      const line = head.toString('utf8').split('\n')[0];
      first = line.startsWith('{') ? line : undefined;
    }
    return { lines: lines.slice(-count), size, first };
  } finally {
    closeSync(fd);
  }
}

/** The lines of a file, read in blocks (no whole-file string, whatever the size). */
export function* readLines(path: string, blockBytes = 1 << 20): Generator<string> {
  const fd = openSync(path, 'r');
  try {
    const block = Buffer.alloc(blockBytes);
    let rest = '';
    for (let position = 0; ; ) {
      const read = readSync(fd, block, 0, block.length, position);
      if (read === 0) break;
      position += read;
      const parts = (rest + block.subarray(0, read).toString('utf8')).split('\n');
      rest = parts.pop() ?? '';
      if (rest.length > TAIL_MAX)
        throw new FedcxrError('audit_corrupt', `audit log has a line longer than ${TAIL_MAX} bytes`, { file: path });
      for (const part of parts) if (part) yield part;
    }
    if (rest) yield rest;
  } finally {
    closeSync(fd);
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * Checks the hash chain of an audit log, across its rotated files (`path` is the current `audit.jsonl`, or the
 * state directory); returns the number of entries and files.
 */
export function verifyAuditLog(path: string): number {
  return verifyAuditChain(path).entries;
}

export function verifyAuditChain(path: string): { entries: number; files: number } {
  const current = existsSync(path) && statSync(path).isDirectory() ? join(path, 'audit.jsonl') : path;
  const files = [...rotatedFiles(current), ...(existsSync(current) ? [current] : [])];
  let prev = GENESIS;
  let seq = 0;
  for (const file of files)
    for (const line of readLines(file)) {
      const entry = parseLine(line, file);
      if (entry.prev !== prev || entry.seq !== seq + 1)
        throw new FedcxrError('audit_chain_broken', `audit log entry ${seq + 1} does not follow entry ${seq}`, {
          file,
        });
      prev = sha256(line);
      seq++;
    }
  return { entries: seq, files: files.length };
}

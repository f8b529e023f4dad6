/**
 * The append-only audit log (JSONL): one line per event, never rewritten. Each line carries the sha256
 * of the previous line (`prev`), so a removed or edited line breaks the chain (`verifyAuditLog`).
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { FedcxrError } from '@fedcxr/core';

export interface AuditEntry {
  seq: number;
  time: string;
  event: string;
  prev: string;
  [field: string]: unknown;
}

const GENESIS = '0'.repeat(64);

export class AuditLog {
  private seq = 0;
  private prev = GENESIS;
  readonly recent: AuditEntry[] = [];

  constructor(
    readonly path: string,
    private readonly keepRecent = 200,
  ) {
    mkdirSync(dirname(path), { recursive: true });
    if (existsSync(path)) {
      const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
      for (const line of lines.slice(-keepRecent)) this.recent.push(JSON.parse(line) as AuditEntry);
      if (lines.length > 0) {
        this.seq = (JSON.parse(lines[lines.length - 1]) as AuditEntry).seq;
        this.prev = sha256(lines[lines.length - 1]);
      }
    }
  }

  /** Appends synchronously (O_APPEND), so the entry is in the file before the caller acknowledges anything. */
  append(event: string, fields: Record<string, unknown> = {}): AuditEntry {
    const entry: AuditEntry = { seq: ++this.seq, time: new Date().toISOString(), event, ...fields, prev: this.prev };
    const line = JSON.stringify(entry);
    appendFileSync(this.path, `${line}\n`, { flag: 'a' });
    this.prev = sha256(line);
    this.recent.push(entry);
    if (this.recent.length > this.keepRecent) this.recent.shift();
    return entry;
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Checks the hash chain of an audit log; returns the number of entries. */
export function verifyAuditLog(path: string): number {
  const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
  let prev = GENESIS;
  lines.forEach((line, i) => {
    const entry = JSON.parse(line) as AuditEntry;
    if (entry.prev !== prev || entry.seq !== i + 1)
      throw new FedcxrError('audit_chain_broken', `audit log entry ${i + 1} does not follow entry ${i}`, {
        file: path,
      });
    prev = sha256(line);
  });
  return lines.length;
}

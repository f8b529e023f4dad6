import { closeSync, ftruncateSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditLog, rotatedFiles, verifyAuditChain } from './audit.js';
import { tempDir } from './testing.js';

const dir = tempDir('fedcxr-audit-');
afterAll(() => dir.remove());

describe('audit log', () => {
  it('rotates past maxBytes with the hash chain carried across files, and reopens where it stopped', () => {
    const path = join(dir.path, 'a', 'audit.jsonl');
    const log = new AuditLog(path, { maxBytes: 4096 });
    for (let i = 0; i < 100; i++) log.append('event', { i, pad: 'x'.repeat(60) });
    expect(rotatedFiles(path).length).toBeGreaterThan(1);
    expect(verifyAuditChain(path)).toEqual({ entries: 100, files: rotatedFiles(path).length + 1 });
    const reopened = new AuditLog(path, { maxBytes: 4096 });
    expect(reopened.append('again').seq).toBe(101);
    expect(verifyAuditChain(join(dir.path, 'a')).entries).toBe(101);
    // An edited line in a rotated file breaks the chain.
    const first = rotatedFiles(path)[0];
    writeFileSync(first, readFileSync(first, 'utf8').replace('"i":3,', '"i":4,'));
    expect(() => verifyAuditChain(path)).toThrow(/does not follow/);
  });

  it('starts from the tail of a huge file, keeping refusals apart from the events the dashboard shows', () => {
    const path = join(dir.path, 'b', 'audit.jsonl');
    const log = new AuditLog(path);
    log.append('coordinator_started');
    for (let i = 0; i < 500; i++) log.append('auth_refused', { reason: 'bad credentials' });
    const tail = readFileSync(path);
    const fd = openSync(path, 'w');
    ftruncateSync(fd, 700 * 1024 * 1024); // a 700 MB hole (sparse), then the real lines
    writeSync(fd, tail, 0, tail.length, 700 * 1024 * 1024);
    closeSync(fd);
    const t0 = performance.now();
    const reopened = new AuditLog(path, { keepRecent: 50 });
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(reopened.recentRefusals).toHaveLength(50);
    expect(reopened.append('site_connected').seq).toBe(502);
    expect(reopened.recent.map((e) => e.event)).toEqual(['site_connected']);
  });
});

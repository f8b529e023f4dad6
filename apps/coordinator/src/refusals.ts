/**
 * Refused attempts (bad tokens, unknown sites, untrusted certificates, malformed requests, failed TLS
 * handshakes) are counted per source address and summarised: the first refusal of a source in an interval
 * is audited in full at once, the rest of that interval's refusals from it become ONE `refusals_summarised`
 * entry with their count (per event and reason) when the interval ends. So a flood from one client writes
 * at most two audit lines per interval, whatever its rate. A source past `maxPerInterval` refusals is
 * `limited`: the coordinator answers its further refusals only after a delay (a tarpit), so a client gets at
 * most one refusal per delay and connection; the right credential from the same address still gets in.
 */
import type { AuditLog } from './audit.js';

export interface RefusalOptions {
  intervalMs: number;
  /** Refusals per source and interval after which its refusals are slowed down until the interval ends. */
  maxPerInterval: number;
  /** Sources tracked at once; refusals from further sources are counted under `*`. */
  maxSources: number;
  /** How long a `limited` source waits for the answer to a refused attempt (`tarpit`). */
  tarpitMs: number;
}

interface Bucket {
  start: number;
  count: number;
  /** Refusals after the first (audited in the summary). */
  suppressed: number;
  events: Record<string, number>;
  reasons: Record<string, number>;
}

const MAX_REASONS = 16;

export class RefusalGate {
  private readonly buckets = new Map<string, Bucket>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly audit: AuditLog,
    readonly options: RefusalOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.timer = setInterval(() => this.flush(), Math.max(50, Math.floor(options.intervalMs / 2)));
    this.timer.unref();
  }

  /** Records a refused attempt; audits it in full when it is the source's first of the interval. */
  refuse(event: string, source: string | undefined, fields: Record<string, unknown> = {}): void {
    const key = this.key(normalizeAddress(source));
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (bucket && now - bucket.start >= this.options.intervalMs) {
      this.summarise(key, bucket, now);
      bucket = undefined;
    }
    if (!bucket) {
      bucket = { start: now, count: 0, suppressed: 0, events: {}, reasons: {} };
      this.buckets.set(key, bucket);
    }
    bucket.count++;
    if (bucket.count === 1) {
      this.audit.append(event, { ...fields, source: key });
      return;
    }
    bucket.suppressed++;
    bucket.events[event] = (bucket.events[event] ?? 0) + 1;
    const reason = typeof fields.reason === 'string' ? fields.reason.slice(0, 120) : undefined;
    if (reason !== undefined) {
      if (reason in bucket.reasons || Object.keys(bucket.reasons).length < MAX_REASONS)
        bucket.reasons[reason] = (bucket.reasons[reason] ?? 0) + 1;
      else bucket.reasons['(other)'] = (bucket.reasons['(other)'] ?? 0) + 1;
    }
  }

  /**
   * Refuses an attempt: audited (summarised per source), answered at once, or, when the source is over its
   * refusal budget for the interval, answered only after `tarpitMs` (with `limited` if given). A refused
   * client thus gets at most one answer per tarpit delay per connection, while the right credential from the
   * same address (a hospital behind the attacker's NAT) still gets in at once.
   */
  tarpit(
    source: string | undefined,
    event: string,
    fields: Record<string, unknown>,
    answer: () => void,
    limited: () => void = answer,
  ): void {
    const over = this.limited(source);
    this.refuse(event, source, over ? { ...fields, limited: true } : fields);
    if (!over) {
      answer();
      return;
    }
    setTimeout(() => {
      try {
        limited();
      } catch {
        // the client has gone
      }
    }, this.options.tarpitMs).unref();
  }

  /** True when `source` has been refused `maxPerInterval` times in the current interval. */
  limited(source: string | undefined): boolean {
    const bucket = this.buckets.get(this.key(normalizeAddress(source)));
    return (
      bucket !== undefined &&
      this.now() - bucket.start < this.options.intervalMs &&
      bucket.count >= this.options.maxPerInterval
    );
  }

  /** Writes the summaries of every interval that has ended. */
  flush(force = false): void {
    const now = this.now();
    for (const [key, bucket] of this.buckets)
      if (force || now - bucket.start >= this.options.intervalMs) {
        this.summarise(key, bucket, now);
        this.buckets.delete(key);
      }
  }

  close(): void {
    clearInterval(this.timer);
    this.flush(true);
  }

  private summarise(key: string, bucket: Bucket, now: number): void {
    if (bucket.suppressed === 0) return;
    this.audit.append('refusals_summarised', {
      source: key,
      count: bucket.suppressed,
      events: bucket.events,
      reasons: bucket.reasons,
      since: new Date(bucket.start).toISOString(),
      until: new Date(Math.min(now, bucket.start + this.options.intervalMs)).toISOString(),
    });
  }

  private key(source: string): string {
    if (this.buckets.has(source) || this.buckets.size < this.options.maxSources) return source;
    return '*';
  }
}

/** `::ffff:127.0.0.1` → `127.0.0.1`; absent → `unknown`. */
export function normalizeAddress(address: string | undefined): string {
  if (!address) return 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

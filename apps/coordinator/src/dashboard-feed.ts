/**
 * The live dashboard's feed: the `/dashboard` socket.io namespace, open to a signed-in admin or viewer
 * (session cookie, access.ts), which gets a snapshot on connecting and then at most ~10 a second while
 * anything changes. A viewer's snapshot has no addresses, nonces, hashes or keys.
 */
import type { Server as SocketServer } from 'socket.io';
import { type AccessControl, type Role, redactEntry } from './access.js';
import type { AuditEntry, AuditLog } from './audit.js';
import type { RefusalGate } from './refusals.js';
import type { OpenRound } from './round-phase.js';
import type { PersistedState, RoundSummary } from './round-store.js';
import type { SiteInfo } from './site-gateway.js';
import { refusal } from './site-gateway.js';

export interface DashboardSnapshot {
  sites: { id: string; online: boolean; lastSeen: number; examples: number; state: string; round: number }[];
  round: {
    number: number;
    open: boolean;
    accepted: number;
    participants: number;
    deadline: number | null;
    quorum: number;
  };
  modelRound: number;
  modelHash: string;
  history: RoundSummary[];
  evaluations: PersistedState['evaluations'];
  audit: AuditEntry[];
}

/** What the dashboard and /api/status show. */
export function buildSnapshot(
  from: {
    sites: Iterable<SiteInfo>;
    open: OpenRound | undefined;
    state: PersistedState;
    quorum: number;
    audit: AuditLog;
  },
  role: Role,
): DashboardSnapshot {
  const { open, state } = from;
  const audit = [...from.audit.recent.slice(-100), ...from.audit.recentRefusals.slice(-20)].sort(
    (a, b) => a.seq - b.seq,
  );
  return {
    sites: [...from.sites].map(({ id, online, lastSeen, examples, state, round }) => ({
      id,
      online,
      lastSeen,
      examples,
      state,
      round,
    })),
    round: {
      number: open?.journal.round ?? state.lastRound,
      open: Boolean(open),
      accepted: open?.journal.accepted.length ?? 0,
      participants: open?.participants.size ?? 0,
      deadline: open?.plan.deadline ?? null,
      quorum: from.quorum,
    },
    modelRound: state.modelRound,
    modelHash: state.modelHash,
    history: state.history,
    evaluations: state.evaluations,
    audit: role === 'admin' ? audit : audit.map(redactEntry),
  };
}

export class DashboardFeed {
  private io: SocketServer | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly access: AccessControl,
    private readonly refusals: RefusalGate,
    private readonly snapshot: (role: Role) => DashboardSnapshot,
  ) {}

  attach(io: SocketServer): void {
    this.io = io;
    const dashboard = io.of('/dashboard');
    dashboard.use((socket, next) => {
      const role = this.access.sessionRole(socket.handshake.headers.cookie);
      if (!role)
        return this.refusals.tarpit(socket.handshake.address, 'dashboard_refused', { reason: 'no valid session' }, () =>
          next(refusal('sign in at /login')),
        );
      socket.data.role = role;
      next();
    });
    dashboard.on('connection', (socket) => {
      const role = socket.data.role as Role;
      void socket.join(role);
      socket.emit('snapshot', this.snapshot(role));
    });
  }

  /** Coalesces state changes into at most ~10 dashboard pushes per second. */
  changed(): void {
    if (this.timer || !this.io) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const dashboard = this.io?.of('/dashboard');
      dashboard?.to('admin').emit('snapshot', this.snapshot('admin'));
      dashboard?.to('viewer').emit('snapshot', this.snapshot('viewer'));
    }, 100);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}

/**
 * BGP session state as BIRD reports it (`birdc -s SOCKET show protocols`), for run's status and
 * metrics: lvs-xdp announces through BIRD and never speaks BGP, so the daemon is the only one
 * that knows whether the routers hear the announcements.
 */
import { spawn } from 'node:child_process';

export interface BgpSession {
  /** BIRD's protocol name (`upstream1` in the configuration lvs-xdp generates). */
  name: string;
  /** BIRD's protocol state: up, start, down, flush. */
  state: string;
  /** BGP state from the info column: Established, Active, Connect, Idle, ... */
  bgp: string;
  since: string;
  /** The rest of the info column (an error: "Error: Hold timer expired", "BFD session down"). */
  info: string;
  established: boolean;
}

/** Pure: the BGP rows of `show protocols` output (other protocols are left out). */
export function parseBirdProtocols(text: string): BgpSession[] {
  const out: BgpSession[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+BGP\s+\S+\s+(\S+)\s+(\S+(?:\s+\d\d:\d\d:\d\d(?:\.\d+)?)?)\s*(.*)$/.exec(line.trimEnd());
    if (!m) continue;
    const rest = m[4]!.trim();
    const [bgp = '', ...info] = rest.split(/\s+/);
    out.push({ name: m[1]!, state: m[2]!, since: m[3]!, bgp, info: info.join(' '), established: bgp === 'Established' });
  }
  return out;
}

function birdc(socket: string, timeoutMs: number): Promise<{ ok: boolean; text: string }> {
  return new Promise((resolve) => {
    const p = spawn('birdc', ['-s', socket, 'show', 'protocols'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => { text += d; });
    p.stderr.setEncoding('utf8').on('data', (d: string) => { text += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', (e) => { clearTimeout(t); resolve({ ok: false, text: e.message }); });
    p.on('close', (code) => { clearTimeout(t); resolve({ ok: code === 0, text }); });
  });
}

export interface SessionChange { session: BgpSession; was?: BgpSession }

/**
 * Polls BIRD every `everyMs`; `sessions` is the last answer (undefined until the first, or while
 * BIRD does not answer: `error` says why). `onChange` hears each session whose BGP state changed.
 */
export class BirdSessions {
  sessions?: BgpSession[];
  error?: string;
  private timer?: NodeJS.Timeout;
  private busy = false;

  constructor(readonly socket: string, private readonly onChange: (c: SessionChange) => void = () => undefined) {}

  start(everyMs = 1000): void {
    void this.poll();
    this.timer = setInterval(() => void this.poll(), everyMs);
    this.timer.unref();
  }

  async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const r = await birdc(this.socket, 2000);
      if (!r.ok) {
        this.error = r.text.trim().split('\n').pop() || 'birdc failed';
        this.sessions = undefined;
        return;
      }
      const now = parseBirdProtocols(r.text);
      const before = new Map((this.sessions ?? []).map((s) => [s.name, s]));
      for (const s of now) {
        const was = before.get(s.name);
        if (!was || was.bgp !== s.bgp) this.onChange({ session: s, ...(was ? { was } : {}) });
      }
      this.sessions = now;
      this.error = undefined;
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

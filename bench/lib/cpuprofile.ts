import fs from 'node:fs';
import path from 'node:path';

/**
 * Summarises V8 .cpuprofile files (node --cpu-prof): self time per function and, per category
 * (npm package, node core module, Spindle source file, GC, idle), both self time and time "on
 * stack" (inclusive: the category appears anywhere in the sampled stack).
 */
interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  file: string;
  /** Sampled wall time, ms. */
  totalMs: number;
  /** Of which not idle, ms. */
  busyMs: number;
  topSelf: Array<{ fn: string; where: string; category: string; ms: number }>;
  categories: Array<{ category: string; selfMs: number; onStackMs: number }>;
}

/** What a frame belongs to: a package, a node core area, a Spindle module, or a V8 pseudo-frame. */
export function categoryOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName === '(idle)') return '(idle)';
    if (functionName === '(garbage collector)') return '(gc)';
    if (functionName === '(program)') return '(program: native, not JS)';
    if (functionName === '(root)') return '(root)';
    return '(native)';
  }
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith('node:')) {
    const mod = url.slice(5).replace(/^internal\//, '');
    if (/^(zlib)/.test(mod)) return 'node:zlib';
    if (/^(fs|fs\/)/.test(mod)) return 'node:fs';
    if (/^(streams|stream)/.test(mod)) return 'node:streams';
    if (/^(net|stream_base_commons|dns)/.test(mod)) return 'node:net';
    if (/^(crypto)/.test(mod)) return 'node:crypto';
    if (/^(worker|per_context\/messageport|event_target)/.test(mod)) return 'node:worker/messaging';
    if (/^(timers|process\/task_queues|async_hooks|process\/)/.test(mod)) return 'node:timers/ticks';
    if (/^(events)/.test(mod)) return 'node:events';
    if (/^(util|buffer|string_decoder)/.test(mod)) return 'node:buffer/util';
    return 'node:other';
  }
  const m = /\/(?:dist|src)\/(.+?)\.(?:[cm]?[jt]s)$/.exec(url);
  if (m) return `spindle:${m[1]}`;
  return path.basename(url);
}

/**
 * `window`: only samples taken in [start, end], in microseconds of CLOCK_MONOTONIC (what V8's
 * profiler timestamps use, and process.hrtime.bigint() / 1000n in any process on the machine).
 */
export function summarizeProfile(file: string, top = 25, window?: { start: number; end: number }): ProfileSummary {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  let ts = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    // timeDeltas[i] is the time since the previous sample; attribute it to this sample.
    const dt = p.timeDeltas[i] ?? 0;
    ts += dt;
    if (window && (ts < window.start || ts > window.end)) continue;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  }
  let total = 0;
  let idle = 0;
  const fnSelf = new Map<string, { fn: string; where: string; category: string; us: number }>();
  const catSelf = new Map<string, number>();
  const catStack = new Map<string, number>();
  const stackCats = new Map<number, Set<string>>();
  const catsOf = (id: number): Set<string> => {
    let s = stackCats.get(id);
    if (s) return s;
    const node = byId.get(id)!;
    const up = parent.get(id);
    s = new Set(up !== undefined ? catsOf(up) : []);
    s.add(categoryOf(node.callFrame));
    stackCats.set(id, s);
    return s;
  };
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const cf = node.callFrame;
    const cat = categoryOf(cf);
    total += us;
    if (cat === '(idle)') idle += us;
    const where = cf.url ? `${shortUrl(cf.url)}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName}|${where}`;
    const e = fnSelf.get(key) ?? { fn: cf.functionName || '(anonymous)', where, category: cat, us: 0 };
    e.us += us;
    fnSelf.set(key, e);
    catSelf.set(cat, (catSelf.get(cat) ?? 0) + us);
    for (const c of catsOf(id)) catStack.set(c, (catStack.get(c) ?? 0) + us);
  }
  return {
    file,
    totalMs: total / 1000,
    busyMs: (total - idle) / 1000,
    topSelf: [...fnSelf.values()].sort((a, b) => b.us - a.us).slice(0, top).map((e) => ({ fn: e.fn, where: e.where, category: e.category, ms: e.us / 1000 })),
    categories: [...catStack.keys()]
      .filter((c) => c !== '(root)')
      .map((c) => ({ category: c, selfMs: (catSelf.get(c) ?? 0) / 1000, onStackMs: (catStack.get(c) ?? 0) / 1000 }))
      .sort((a, b) => b.selfMs - a.selfMs),
  };
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const m = /\/((?:dist|src)\/.+)$/.exec(url);
  if (m) return m[1]!;
  return url.replace(/^file:\/\//, '');
}

export function formatSummary(s: ProfileSummary, label: string, messages?: number): string {
  const pct = (ms: number) => `${((100 * ms) / s.totalMs).toFixed(1)}%`;
  const per = (ms: number) => (messages ? ` | ${((1000 * ms) / messages).toFixed(0)}` : '');
  const perHead = messages ? ' | µs per message' : '';
  const perAlign = messages ? '|---:' : '';
  const lines: string[] = [];
  lines.push(`${label}: ${path.basename(s.file)} — sampled ${(s.totalMs / 1000).toFixed(2)} s, busy ${(s.busyMs / 1000).toFixed(2)} s (${pct(s.busyMs)})` +
    (messages ? `, ${((1000 * s.busyMs) / messages).toFixed(0)} µs busy per message` : ''));
  lines.push('');
  lines.push(`| category | self | on stack${messages ? ' | µs per message (self)' : ''} |`);
  lines.push(`|---|---:|---:${perAlign}|`);
  for (const c of s.categories.slice(0, 22)) lines.push(`| ${c.category} | ${pct(c.selfMs)} | ${pct(c.onStackMs)}${per(c.selfMs)} |`);
  lines.push('');
  lines.push(`| top self-time frames | where | category | self${perHead} |`);
  lines.push(`|---|---|---|---:${perAlign}|`);
  for (const f of s.topSelf) lines.push(`| \`${f.fn}\` | ${f.where} | ${f.category} | ${pct(f.ms)}${per(f.ms)} |`);
  return lines.join('\n');
}

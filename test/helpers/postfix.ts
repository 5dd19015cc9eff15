/**
 * Throwaway Postfix instance for end-to-end tests.
 *
 * Starts a real Postfix (3.4+; developed against Debian 12's 3.7) from a temp directory with its
 * own main.cf/master.cf, queue, data directory and log file, listening on a loopback port. Every
 * real recipient is discarded (`default_transport = discard`); the journal copy goes to Spindle's
 * SMTP listener through a dedicated `journal` smtp transport.
 *
 * Requirements: the Postfix binaries, running as root (the `postfix` command is reserved for the
 * super-user), the `mail_owner` user (`postfix`) and `setgid_group` (`postdrop`) that the Debian
 * package creates. Nothing in /etc/postfix is read or written (no main.cf is needed there).
 *
 * Nothing global is registered: call `stop()` (e.g. in afterAll/afterEach) to stop the instance
 * and delete its directory.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, realpath, rm, utimes, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';

export interface PostfixOptions {
  /** Where Spindle's SMTP listener is: an IPv4 address, normally 127.0.0.1 (used as [host]:port nexthop). */
  archiveHost: string;
  archivePort: number;
  /**
   * `always_bcc`: `always_bcc = archive@<archiveDomain>`, one copy per message, RCPT is only the
   * archive address. `envelope`: sender_bcc_maps/recipient_bcc_maps encoding every envelope
   * address as `journal+rcpt.<local>=<domain>@<archiveDomain>` / `journal+from.…`.
   */
  mode: 'always_bcc' | 'envelope';
  /** Default 'archive.example'. */
  archiveDomain?: string;
  /** `journal_destination_recipient_limit` (default 1000). Note: 1 has special per-recipient semantics in Postfix. */
  recipientLimit?: number;
  /** Extra / overriding main.cf parameters, applied last (e.g. `{ message_size_limit: '20000000' }`). */
  mainCf?: Record<string, string>;
}

export interface SendOptions {
  from: string;
  to: string[];
  cc?: string[];
  /** Envelope recipients only... and a `Bcc:` header, so tests can prove Postfix cleanup strips it. */
  bcc?: string[];
  /** Complete message (CRLF or LF); when given, subject/body and the generated headers are not used. */
  raw?: string | Buffer;
  subject?: string;
  body?: string;
}

export interface PostfixInstance {
  /** Loopback port where this Postfix accepts mail (smtpd on 127.0.0.1). */
  smtpPort: number;
  /** Root temp directory: etc/ (config), queue/, data/, maillog. */
  dir: string;
  /** The Postfix config directory (for `postconf -c`, `postqueue -c`). */
  configDir: string;
  /** Submit over SMTP to smtpPort. Envelope RCPTs are to+cc+bcc; headers carry To, Cc and Bcc. */
  send(opts: SendOptions): Promise<void>;
  /** Resolves once the queue is empty (all deliveries, including the archive copy, finished). */
  waitForQueueEmpty(timeoutMs?: number): Promise<void>;
  /** The maillog contents (for debugging failures); still available after stop(). */
  log(): Promise<string>;
  /** Stop Postfix (stop, then kill the master's process group if needed) and remove `dir`. */
  stop(): Promise<void>;
}

const POSTFIX = '/usr/sbin/postfix';
const POSTCONF = '/usr/sbin/postconf';
const POSTQUEUE = '/usr/sbin/postqueue';

let availableCache: boolean | undefined;
let availableReason = '';
/** mail_owner / setgid_group names and ids, found by checkAvailable(). */
const ids = { owner: 'postfix', group: 'postdrop', ownerUid: -1, ownerGid: -1, setgidGid: -1 };

/** True when a throwaway Postfix can be started here (binaries present, root, postfix/postdrop exist). */
export function postfixAvailable(): boolean {
  if (availableCache !== undefined) return availableCache;
  availableCache = checkAvailable();
  return availableCache;
}

/** Why postfixAvailable() returned false (empty when available). */
export function postfixUnavailableReason(): string {
  postfixAvailable();
  return availableReason;
}

function checkAvailable(): boolean {
  const fail = (why: string): boolean => {
    availableReason = why;
    return false;
  };
  if (process.platform === 'win32') return fail('not supported on Windows');
  for (const bin of [POSTFIX, POSTCONF, POSTQUEUE]) {
    if (!existsSync(bin)) return fail(`${bin} not found`);
  }
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return fail('must run as root (the postfix command is reserved for the super-user)');
  }
  const r = spawnSync(POSTCONF, ['-dh', 'mail_version', 'daemon_directory', 'mail_owner', 'setgid_group'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (r.status !== 0) return fail(`postconf -d failed: ${r.error?.message ?? r.stderr}`);
  const [version = '', daemonDir = '', owner = '', group = ''] = r.stdout.trim().split('\n');
  const [maj = 0, min = 0] = version.split('.').map(Number);
  if (maj < 3 || (maj === 3 && min < 4)) return fail(`Postfix ${version} < 3.4 (no postlogd/maillog_file)`);
  if (!existsSync(path.join(daemonDir, 'master'))) return fail(`${daemonDir}/master not found`);
  const uid = spawnSync('id', ['-u', owner], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', owner], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return fail(`mail_owner user ${owner} does not exist`);
  const grp = spawnSync('getent', ['group', group], { encoding: 'utf8' });
  if (grp.status !== 0) return fail(`setgid_group ${group} does not exist`);
  Object.assign(ids, {
    owner,
    group,
    ownerUid: Number(uid.stdout.trim()),
    ownerGid: Number(gid.stdout.trim()),
    setgidGid: Number(grp.stdout.split(':')[2]),
  });
  return true;
}

interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err && code === -1 ? String(err.message) : '') });
    });
  });
}

/** A port the OS considers free right now (small race until Postfix binds it). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** main.cf contents (exported for docs and debugging). */
export function buildMainCf(dir: string, opts: PostfixOptions): string {
  const archiveDomain = opts.archiveDomain ?? 'archive.example';
  const limit = opts.recipientLimit ?? 1000;
  const nexthop = `[${opts.archiveHost}]`; // IPv4 literal (inet_protocols = ipv4): no MX/DNS lookup
  const p: Array<[string, string]> = [
    ['compatibility_level', '3.6'],
    ['queue_directory', `${dir}/queue`],
    ['data_directory', `${dir}/data`],
    ['maillog_file', `${dir}/maillog`],
    ['maillog_file_prefixes', dir],
    ['mail_owner', ids.owner],
    ['setgid_group', ids.group],
    ['myhostname', 'mx.test.example'],
    ['mydestination', ''],
    ['relay_domains', ''],
    ['inet_interfaces', '127.0.0.1'],
    ['inet_protocols', 'ipv4'],
    ['mynetworks', '127.0.0.0/8'],
    ['smtpd_relay_restrictions', 'permit_mynetworks, reject'],
    ['smtpd_tls_security_level', 'none'],
    ['smtp_tls_security_level', 'none'],
    ['smtp_dns_support_level', 'disabled'],
    ['default_transport', 'discard'],
    ['alias_maps', ''],
    ['alias_database', ''],
    ['local_recipient_maps', ''],
    ['biff', 'no'],
    // Test-friendly timing: no arrival throttling, fast retries after a deferral.
    ['in_flow_delay', '0'],
    ['queue_run_delay', '1s'],
    ['minimal_backoff_time', '1s'],
    ['maximal_backoff_time', '2s'],
    ['smtp_connect_timeout', '5s'],
    ['transport_maps', `inline:{${archiveDomain}=journal:${nexthop}:${opts.archivePort}}`],
    ['journal_destination_recipient_limit', String(limit)],
  ];
  if (opts.mode === 'always_bcc') {
    p.push(['always_bcc', `archive@${archiveDomain}`]);
  } else {
    p.push(['recipient_bcc_maps', `regexp:${dir}/etc/spindle_rcpt`]);
    p.push(['sender_bcc_maps', `regexp:${dir}/etc/spindle_from`]);
  }
  for (const [k, v] of Object.entries(opts.mainCf ?? {})) {
    const i = p.findIndex(([name]) => name === k);
    if (i >= 0) p[i] = [k, v];
    else p.push([k, v]);
  }
  return p.map(([k, v]) => (v === '' ? `${k} =` : `${k} = ${v}`)).join('\n') + '\n';
}

/** master.cf contents: only the services this setup needs, all with chroot n. */
export function buildMasterCf(smtpPort: number): string {
  return [
    '# service type  private unpriv  chroot  wakeup  maxproc command + args',
    `127.0.0.1:${smtpPort} inet n - n - - smtpd`,
    'pickup    unix  n       -       n       60      1       pickup',
    'cleanup   unix  n       -       n       -       0       cleanup',
    'qmgr      unix  n       -       n       300     1       qmgr',
    'rewrite   unix  -       -       n       -       -       trivial-rewrite',
    'bounce    unix  -       -       n       -       0       bounce',
    'defer     unix  -       -       n       -       0       bounce',
    'trace     unix  -       -       n       -       0       bounce',
    'verify    unix  -       -       n       -       1       verify',
    'flush     unix  n       -       n       1000?   0       flush',
    'proxymap  unix  -       -       n       -       -       proxymap',
    'showq     unix  n       -       n       -       -       showq',
    'error     unix  -       -       n       -       -       error',
    'retry     unix  -       -       n       -       -       error',
    'discard   unix  -       -       n       -       -       discard',
    'smtp      unix  -       -       n       -       -       smtp',
    'anvil     unix  -       -       n       -       1       anvil',
    'scache    unix  -       -       n       -       1       scache',
    'postlog   unix-dgram n  -       n       -       1       postlogd',
    'journal   unix  -       -       n       -       -       smtp',
    '',
  ].join('\n');
}

/** The envelope-mode regexp tables; the archive domain itself is skipped (no BCC of the journal copy). */
export function buildBccMaps(archiveDomain: string): { rcpt: string; from: string } {
  const skip = `if !/@${escapeRegex(archiveDomain)}$/`;
  return {
    rcpt: `${skip}\n/^(.+)@(.+)$/ journal+rcpt.\${1}=\${2}@${archiveDomain}\nendif\n`,
    from: `${skip}\n/^(.+)@(.+)$/ journal+from.\${1}=\${2}@${archiveDomain}\nendif\n`,
  };
}

function buildMessage(o: SendOptions): string {
  const lines = [
    `From: ${o.from}`,
    `To: ${o.to.join(', ')}`,
    ...(o.cc?.length ? [`Cc: ${o.cc.join(', ')}`] : []),
    ...(o.bcc?.length ? [`Bcc: ${o.bcc.join(', ')}`] : []),
    `Subject: ${o.subject ?? 'Spindle Postfix harness test'}`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${Date.now().toString(36)}.${Math.random().toString(36).slice(2)}@client.test.example>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    (o.body ?? 'Hello from the Postfix harness.').replace(/\r?\n/g, '\r\n'),
    '',
  ];
  return lines.join('\r\n');
}

export async function startPostfix(opts: PostfixOptions): Promise<PostfixInstance> {
  if (!postfixAvailable()) throw new Error(`Postfix not available: ${availableReason}`);
  const archiveDomain = opts.archiveDomain ?? 'archive.example';
  // realpath: maillog_file must start with one of maillog_file_prefixes, literally.
  const dir = await realpath(await mkdtemp(path.join(os.tmpdir(), 'spindle-postfix-')));
  // mkdtemp gives 0700; Postfix daemons drop to mail_owner, keep the tree traversable.
  const configDir = path.join(dir, 'etc');
  try {
    await chmod(dir, 0o755);
    await mkdir(configDir, { mode: 0o755 });
    await createQueueAndDataDirs(dir);
    await writeFile(path.join(configDir, 'main.cf'), buildMainCf(dir, opts), { mode: 0o644 });
    if (opts.mode === 'envelope') {
      const maps = buildBccMaps(archiveDomain);
      await writeFile(path.join(configDir, 'spindle_rcpt'), maps.rcpt, { mode: 0o644 });
      await writeFile(path.join(configDir, 'spindle_from'), maps.from, { mode: 0o644 });
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  const logFile = path.join(dir, 'maillog');
  const readLog = async (): Promise<string> => {
    try {
      return await readFile(logFile, 'utf8');
    } catch {
      return '';
    }
  };

  let smtpPort = 0;
  let lastErr = '';
  for (let attempt = 0; attempt < 3 && smtpPort === 0; attempt++) {
    const port = await freePort();
    await writeFile(path.join(configDir, 'master.cf'), buildMasterCf(port), { mode: 0o644 });
    await backdate(configDir);
    // Skip postfix-script's check-fatal/check-warn (create-missing, postsuper, find … warnings);
    // the directories are already right. postfix-script deletes the flag file.
    await writeFile(path.join(dir, 'queue', 'quick-start'), '');
    const r = await run(POSTFIX, ['-c', configDir, 'start'], 60_000);
    if (r.code === 0) {
      smtpPort = port;
      break;
    }
    lastErr = `${r.stderr}${r.stdout}\n${await readLog()}`;
    await forceStop(dir, configDir);
    if (!/address already in use/i.test(lastErr)) break; // only the port race is worth a retry
  }
  if (smtpPort === 0) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`postfix start failed:\n${lastErr}`);
  }

  let stopped = false;
  let finalLog: string | undefined; // kept by stop(), so log() still works in failure hooks
  const instance: PostfixInstance = {
    smtpPort,
    dir,
    configDir,

    async send(o: SendOptions): Promise<void> {
      const transport = nodemailer.createTransport({
        host: '127.0.0.1',
        port: smtpPort,
        secure: false,
        ignoreTLS: true,
        name: 'client.test.example',
        connectionTimeout: 10_000,
        socketTimeout: 20_000,
      });
      try {
        await transport.sendMail({
          envelope: { from: o.from, to: [...o.to, ...(o.cc ?? []), ...(o.bcc ?? [])] },
          raw: o.raw ?? buildMessage(o),
        });
      } finally {
        transport.close();
      }
    },

    async waitForQueueEmpty(timeoutMs = 15_000): Promise<void> {
      const start = Date.now();
      let lastFlush = start;
      let out = '';
      for (;;) {
        const r = await run(POSTQUEUE, ['-c', configDir, '-p'], 10_000);
        out = r.stdout + r.stderr;
        if (r.code === 0 && /Mail queue is empty/.test(r.stdout)) return;
        const now = Date.now();
        if (now - start > timeoutMs) {
          throw new Error(`Postfix queue not empty after ${timeoutMs} ms:\n${out}\n--- maillog ---\n${await readLog()}`);
        }
        if (now - lastFlush > 2_000) {
          // Nudge: retry deferred mail now (normally not needed; qmgr delivers within ~1 s).
          await run(POSTQUEUE, ['-c', configDir, '-f'], 10_000);
          lastFlush = now;
        }
        await sleep(100);
      }
    },

    log: async () => finalLog ?? readLog(),

    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      try {
        await forceStop(dir, configDir);
      } finally {
        finalLog = await readLog();
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
  return instance;
}

/**
 * Postfix re-reads main.cf in a 300 ms sleep loop while the file's mtime is within the last
 * second (a guard against reading a file that is still being edited), which adds ~1.5 s to every
 * start right after writing the config. Set the config files' times one minute into the past.
 */
async function backdate(configDir: string): Promise<void> {
  const t = new Date(Date.now() - 60_000);
  for (const f of await readdir(configDir)) await utimes(path.join(configDir, f), t, t);
}

/**
 * What `postfix start` would do via `post-install create-missing` (postfix-files entries with the
 * "c" flag), done directly: that shell loop takes ~2.5 s per start. With the directories in place
 * `queue/quick-start` makes postfix-script skip check-fatal/check-warn, so start takes ~0.3 s.
 *
 * Owners matter: queue/ and queue/pid root 0755 (queue/ must exist at all: the postfix command
 * chdirs into it first, "fatal: chdir(…/queue): No such file or directory"); data/ must belong to
 * mail_owner (a root-owned data/ makes master fail: "open lock file …/data/master.lock: cannot
 * create file exclusively: Permission denied").
 */
async function createQueueAndDataDirs(dir: string): Promise<void> {
  const q = path.join(dir, 'queue');
  await mkdir(q, { mode: 0o755 });
  const mk = async (p: string, uid: number, gid: number, mode: number): Promise<void> => {
    await mkdir(p, { mode });
    await chown(p, uid, gid);
    await chmod(p, mode); // mkdir's mode is filtered by the umask
  };
  await mk(path.join(q, 'pid'), 0, 0, 0o755);
  for (const d of ['active', 'bounce', 'corrupt', 'defer', 'deferred', 'flush', 'hold', 'incoming', 'private', 'saved', 'trace']) {
    await mk(path.join(q, d), ids.ownerUid, 0, 0o700);
  }
  await mk(path.join(q, 'maildrop'), ids.ownerUid, ids.setgidGid, 0o730);
  await mk(path.join(q, 'public'), ids.ownerUid, ids.setgidGid, 0o710);
  await mk(path.join(dir, 'data'), ids.ownerUid, ids.ownerGid, 0o700);
}

async function masterPid(dir: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await readFile(path.join(dir, 'queue', 'pid', 'master.pid'), 'utf8')).trim(), 10);
    return Number.isFinite(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Process exists and is not a zombie (the master is reparented to PID 1, which may reap lazily). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true; // no procfs: trust kill(0)
  }
}

/** `postfix stop`; if the master is still there, SIGKILL its process group (it is a session leader). */
async function forceStop(dir: string, configDir: string): Promise<void> {
  const pid = await masterPid(dir);
  if (pid === undefined || !alive(pid)) return;
  await run(POSTFIX, ['-c', configDir, 'stop'], 10_000);
  for (let i = 0; i < 50 && alive(pid); i++) await sleep(100);
  if (alive(pid)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (let i = 0; i < 20 && alive(pid); i++) await sleep(100);
  }
}

/**
 * Throwaway Dovecot instance for IMAP tests (sign-in, and IMAP APPEND restores).
 *
 * Starts a real Dovecot (developed against Debian 12's 2.3.19) in the foreground (`dovecot -F -c
 * <dir>/dovecot.conf`) from a temp directory holding its config, a passwd-file user database, a
 * self-signed certificate (CN=localhost, SAN IP:127.0.0.1 + DNS:localhost), base_dir, state_dir,
 * the log and the users' maildirs. Two listeners on 127.0.0.1 with OS-picked ports: `imap`
 * (cleartext, STARTTLS offered) and `imaps` (implicit TLS). Nothing under /etc/dovecot is read.
 *
 * As root (the normal case here and in CI) the services run as Debian's `dovecot`/`dovenull` users
 * and the mail processes as `nobody`/`nogroup` (Dovecot never runs mail access as root). As any
 * other user everything runs as that user, with chroots off ("rootless" mode).
 *
 * Test-friendly deviations from a production Dovecot, on purpose: `auth_failure_delay = 0` and no
 * auth penalty (see `authPenalty`), so a wrong-password test answers in ~0.5 s instead of 2–15 s.
 *
 * Nothing global is registered: call `stop()` (e.g. in afterAll) to stop the instance and delete
 * its directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './postfix.js';

export interface DovecotOptions {
  /**
   * Users as `address → password`, e.g. `{ 'alice@example.test': 'secret' }`. Addresses are stored
   * lower-case (Dovecot lower-cases the login name, `auth_username_format = %Lu`). Neither may
   * contain `:` or control characters (passwd-file format).
   */
  users?: Record<string, string>;
  /** How passwords are stored: `PLAIN` (default, fast) or `SHA512-CRYPT` (via `doveadm pw`, as a real server would). */
  passwordScheme?: 'PLAIN' | 'SHA512-CRYPT';
  /**
   * Keep Dovecot's per-IP auth penalty (failures from one IP delay that IP's next logins by
   * 2, 4, 8, up to 15 s). Off by default so tests are fast and independent of each other.
   */
  authPenalty?: boolean;
  /** `login_trusted_networks`, e.g. ['127.0.0.0/8'] so the ID command's x-originating-ip is honoured. */
  trustedNetworks?: string[];
  /** Raw dovecot.conf lines appended at the end (later settings win). */
  extraConfig?: string;
  /**
   * Master users as `name → password` (a passdb with `master = yes`): `alice@example.test*name`
   * with the master's password logs in to alice's mailbox, the way Spindle's restores do. The
   * target must exist (`pass = yes` looks it up in the users' passdb). None by default.
   */
  masterUsers?: Record<string, string>;
  /** `auth_master_user_separator` for master logins (default `*`). */
  masterSeparator?: string;
}

export interface DovecotInstance {
  host: '127.0.0.1';
  /** Cleartext IMAP listener; STARTTLS is offered. */
  imapPort: number;
  /** Implicit-TLS IMAP listener. */
  imapsPort: number;
  /** PEM of the self-signed server certificate: pass it as `ca` to trust this instance. */
  ca: string;
  /** Root temp directory: dovecot.conf, passwd (the passwd-file), cert/key, run/, state/, mail/, dovecot.log. */
  dir: string;
  /** Parent of the users' homes: `<mailDir>/<domain>/<local>/Maildir` is a user's mailbox. */
  mailDir: string;
  /** uid/gid the mail processes run as (and own the maildirs); chown files written directly. */
  mailUid: number;
  mailGid: number;
  /** The Maildir of one user (it exists once the user has logged in or received mail). */
  maildirOf(address: string): string;
  /** The Dovecot log (for debugging failures); still available after stop(). */
  log(): Promise<string>;
  /** Stop Dovecot (SIGTERM, then SIGKILL of its process group) and remove `dir`. */
  stop(): Promise<void>;
}

const DOVECOT = '/usr/sbin/dovecot';
const DOVEADM = '/usr/bin/doveadm';

const DEFAULT_USERS: Readonly<Record<string, string>> = { 'alice@example.test': 'alice-password' };

/** Who runs what, found by checkAvailable(). */
interface Identity {
  rootless: boolean;
  internalUser: string;
  internalGroup: string;
  loginUser: string;
  /** Group of the auth process, which must read the passwd file. */
  internalGid: number;
  mailUid: number;
  mailGid: number;
}

let availableCache: boolean | undefined;
let availableReason = '';
let identity: Identity | undefined;

/** True when a throwaway Dovecot can be started here (binaries, openssl, and as root its system users). */
export function dovecotAvailable(): boolean {
  if (availableCache !== undefined) return availableCache;
  availableCache = checkAvailable();
  return availableCache;
}

/** Why dovecotAvailable() returned false (empty when available). */
export function dovecotUnavailableReason(): string {
  dovecotAvailable();
  return availableReason;
}

function idOf(flag: '-u' | '-g', user: string): number | undefined {
  const r = spawnSync('id', [flag, user], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : undefined;
}

function checkAvailable(): boolean {
  const fail = (why: string): boolean => {
    availableReason = why;
    return false;
  };
  if (process.platform === 'win32') return fail('not supported on Windows');
  for (const bin of [DOVECOT, DOVEADM]) {
    if (!existsSync(bin)) return fail(`${bin} not found (apt-get install dovecot-imapd)`);
  }
  const v = spawnSync(DOVECOT, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (v.status !== 0) return fail(`dovecot --version failed: ${v.error?.message ?? v.stderr}`);
  const [maj = 0, min = 0] = v.stdout.trim().split('.').map(Number);
  if (maj < 2 || (maj === 2 && min < 3)) return fail(`Dovecot ${v.stdout.trim()} < 2.3 (config syntax differs)`);
  if (maj > 2) return fail(`Dovecot ${v.stdout.trim()}: the generated config is 2.3 syntax`);
  if (spawnSync('openssl', ['version'], { encoding: 'utf8' }).status !== 0) return fail('openssl not found');
  if (!existsSync('/usr/lib/dovecot/imap') && !existsSync('/usr/libexec/dovecot/imap')) {
    return fail('the imap service is missing (apt-get install dovecot-imapd)');
  }

  const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  const gid = typeof process.getgid === 'function' ? process.getgid() : -1;
  if (uid !== 0) {
    const name = spawnSync('id', ['-un'], { encoding: 'utf8' }).stdout.trim();
    const group = spawnSync('id', ['-gn'], { encoding: 'utf8' }).stdout.trim();
    if (!name || !group) return fail(`cannot name the current user/group (uid ${uid}); Dovecot needs names`);
    identity = { rootless: true, internalUser: name, internalGroup: group, loginUser: name, internalGid: gid, mailUid: uid, mailGid: gid };
    return true;
  }
  // Debian's dovecot-core creates these: default_internal_user and default_login_user.
  for (const user of ['dovecot', 'dovenull']) {
    if (idOf('-u', user) === undefined) return fail(`system user ${user} does not exist (created by dovecot-core)`);
  }
  const mailUid = idOf('-u', 'nobody');
  const mailGid = idOf('-g', 'nobody');
  if (mailUid === undefined || mailGid === undefined) return fail('user nobody does not exist (used for mail processes)');
  const internalGid = idOf('-g', 'dovecot') ?? 0;
  identity = { rootless: false, internalUser: 'dovecot', internalGroup: 'dovecot', loginUser: 'dovenull', internalGid, mailUid, mailGid };
  return true;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function runOrThrow(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args[0] ?? ''} failed: ${r.error?.message ?? r.stderr}`);
  return r.stdout;
}

/** Self-signed P-256 certificate (fast to generate) valid for 127.0.0.1 and localhost. */
function makeCertificate(dir: string): { cert: string; key: string } {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  runOrThrow('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  return { cert, key };
}

function checkPasswdField(what: string, value: string): void {
  // passwd-file is ':'-separated, one user a line.
  if (value === '' || /[:\x00-\x1f\x7f]/.test(value)) throw new Error(`harness ${what} must be non-empty without ':' or control characters`);
}

function passwdFile(users: Record<string, string>, scheme: 'PLAIN' | 'SHA512-CRYPT'): string {
  const lines: string[] = [];
  for (const [address, password] of Object.entries(users)) {
    checkPasswdField('user', address);
    checkPasswdField('password', password);
    if (!/^[^@\s/]+@[^@\s/]+$/.test(address)) throw new Error(`harness user must be local@domain: ${address}`);
    const hash =
      scheme === 'PLAIN' ? `{PLAIN}${password}` : runOrThrow(DOVEADM, ['-O', 'pw', '-s', scheme, '-p', password]).trim();
    // user:password:uid:gid:gecos:home:shell:extra — uid/gid/home come from userdb default_fields.
    lines.push(`${address.toLowerCase()}:${hash}::::::`);
  }
  return lines.join('\n') + '\n';
}

/** The master users' passwd-file: plain names, PLAIN passwords (test-only). */
function masterPasswdFile(masters: Record<string, string>): string {
  return Object.entries(masters).map(([name, password]) => {
    checkPasswdField('master user', name);
    checkPasswdField('master password', password);
    return `${name}:{PLAIN}${password}::::::`;
  }).join('\n') + '\n';
}

/** Master-user passdb; it must come before the users' passdb, which it hands the target to (pass = yes). */
function masterPassdb(dir: string, opts: DovecotOptions): string[] {
  if (!opts.masterUsers || Object.keys(opts.masterUsers).length === 0) return [];
  return [
    `auth_master_user_separator = ${opts.masterSeparator ?? '*'}`,
    `passdb {`,
    `  driver = passwd-file`,
    `  args = ${dir}/master-passwd`,
    `  master = yes`,
    `  pass = yes`,
    `}`,
  ];
}

/** dovecot.conf contents (exported for docs and debugging). */
export function buildDovecotConf(
  dir: string,
  ports: { imap: number; imaps: number },
  opts: DovecotOptions,
  who: Identity,
): string {
  const noChroot = who.rootless ? '  chroot =' : ''; // chroot() needs root
  const lines = [
    `# Generated by test/helpers/dovecot.ts`,
    `protocols = imap`,
    `listen = 127.0.0.1`,
    `base_dir = ${dir}/run`,
    `state_dir = ${dir}/state`,
    // Own instance name: doveadm/-i and the "already running" check stay per instance.
    `instance_name = ${path.basename(dir)}`,
    `log_path = ${dir}/dovecot.log`,
    `info_log_path = ${dir}/dovecot.log`,
    `default_internal_user = ${who.internalUser}`,
    `default_internal_group = ${who.internalGroup}`,
    `default_login_user = ${who.loginUser}`,
    `ssl = yes`,
    `ssl_cert = <${dir}/cert.pem`,
    `ssl_key = <${dir}/key.pem`,
    `disable_plaintext_auth = yes`, // as on iRedMail; loopback counts as secure for Dovecot
    `auth_mechanisms = plain login`,
    `auth_username_format = %Lu`,
    `auth_failure_delay = 0`,
    `auth_verbose = yes`,
    `login_trusted_networks = ${(opts.trustedNetworks ?? []).join(' ')}`,
    // Only the one mail user may log in; never root.
    `first_valid_uid = ${who.mailUid}`,
    `last_valid_uid = ${who.mailUid}`,
    `first_valid_gid = ${who.mailGid}`,
    `last_valid_gid = ${who.mailGid}`,
    `mail_location = maildir:~/Maildir`,
    ...masterPassdb(dir, opts),
    `passdb {`,
    `  driver = passwd-file`,
    `  args = ${dir}/passwd`,
    `}`,
    `userdb {`,
    `  driver = passwd-file`,
    `  args = ${dir}/passwd`,
    `  default_fields = uid=${who.mailUid} gid=${who.mailGid} home=${dir}/mail/%Ld/%Ln`,
    `}`,
    `service imap-login {`,
    `  inet_listener imap {`,
    `    address = 127.0.0.1`,
    `    port = ${ports.imap}`,
    `  }`,
    `  inet_listener imaps {`,
    `    address = 127.0.0.1`,
    `    port = ${ports.imaps}`,
    `    ssl = yes`,
    `  }`,
    noChroot,
    `}`,
  ];
  // The documented switch for the penalty: without this socket auth skips penalty lookups.
  const noPenalty = opts.authPenalty ? [] : ['  unix_listener anvil-auth-penalty {', '    mode = 0', '  }'];
  lines.push('service anvil {', noChroot, ...noPenalty, '}');
  if (opts.extraConfig) lines.push(opts.extraConfig);
  return lines.filter((l) => l !== '').join('\n') + '\n';
}

/** Resolves once a TCP connection to host:port succeeds. */
function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Started and not exited (a failed spawn emits 'error' and never exits: `pid` stays undefined). */
function alive(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (!alive(child) || child.pid === undefined) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM'); // master stops its services and exits
  const done = await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)]);
  if (done) return;
  try {
    process.kill(-child.pid, 'SIGKILL'); // detached: the master leads its own process group
  } catch {
    child.kill('SIGKILL');
  }
  await Promise.race([exited, sleep(2_000)]);
}

interface Started {
  child: ChildProcess;
  imap: number;
  imaps: number;
}

/** Spawns Dovecot on two fresh ports; resolves when both accept, rejects with the log on failure. */
async function spawnOnFreePorts(dir: string, opts: DovecotOptions, who: Identity, readLog: () => Promise<string>): Promise<Started> {
  let lastErr = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const imap = await freePort();
    let imaps = await freePort();
    while (imaps === imap) imaps = await freePort();
    await writeFile(path.join(dir, 'dovecot.conf'), buildDovecotConf(dir, { imap, imaps }, opts, who), { mode: 0o644 });

    const child = spawn(DOVECOT, ['-F', '-c', path.join(dir, 'dovecot.conf')], {
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', (e) => (stderr += `${String(e)}\n`));

    const deadline = Date.now() + 15_000;
    let ready = false;
    while (alive(child) && Date.now() < deadline) {
      if ((await canConnect(imap)) && (await canConnect(imaps))) {
        ready = true;
        break;
      }
      await sleep(50);
    }
    if (ready && alive(child)) return { child, imap, imaps };

    await stopProcess(child);
    lastErr = `${stderr}\n${await readLog()}`;
    if (!/address already in use/i.test(lastErr)) break; // only the port race is worth a retry
  }
  throw new Error(`dovecot start failed:\n${lastErr}`);
}

export async function startDovecot(opts: DovecotOptions = {}): Promise<DovecotInstance> {
  if (!dovecotAvailable() || !identity) throw new Error(`Dovecot not available: ${availableReason}`);
  const who = identity;
  const dir = await realpath(await mkdtemp(path.join(os.tmpdir(), 'spindle-dovecot-')));
  const mailDir = path.join(dir, 'mail');
  let ca = '';
  try {
    // mkdtemp gives 0700; mail processes (nobody) must traverse to their homes below it.
    await chmod(dir, 0o755);
    const { cert } = makeCertificate(dir);
    ca = await readFile(cert, 'utf8');
    // Read by the auth process, which runs as default_internal_user (dovecot), not root.
    const passwd = path.join(dir, 'passwd');
    await writeFile(passwd, passwdFile(opts.users ?? DEFAULT_USERS, opts.passwordScheme ?? 'PLAIN'), { mode: 0o640 });
    await chown(passwd, process.getuid?.() ?? 0, who.internalGid);
    if (opts.masterUsers && Object.keys(opts.masterUsers).length > 0) {
      const master = path.join(dir, 'master-passwd');
      await writeFile(master, masterPasswdFile(opts.masterUsers), { mode: 0o640 });
      await chown(master, process.getuid?.() ?? 0, who.internalGid);
    }
    for (const d of ['run', 'state']) await mkdir(path.join(dir, d), { mode: 0o755 });
    await mkdir(mailDir, { mode: 0o700 });
    await chown(mailDir, who.mailUid, who.mailGid);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  const logFile = path.join(dir, 'dovecot.log');
  const readLog = async (): Promise<string> => {
    try {
      return await readFile(logFile, 'utf8');
    } catch {
      return '';
    }
  };

  let started: Started;
  try {
    started = await spawnOnFreePorts(dir, opts, who, readLog);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  let stopped = false;
  let finalLog: string | undefined; // kept by stop(), so log() still works in failure hooks
  return {
    host: '127.0.0.1',
    imapPort: started.imap,
    imapsPort: started.imaps,
    ca,
    dir,
    mailDir,
    mailUid: who.mailUid,
    mailGid: who.mailGid,
    maildirOf(address: string): string {
      const [local = '', domain = ''] = address.toLowerCase().split('@');
      return path.join(mailDir, domain, local, 'Maildir');
    },
    log: async () => finalLog ?? readLog(),
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      try {
        await stopProcess(started.child);
      } finally {
        finalLog = await readLog();
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

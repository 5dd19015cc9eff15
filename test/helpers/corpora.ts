import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Real-world mail installed from Debian packages (see /work/shared/corpora.md); never copied into
 * the repository. Each corpus lists its files when its directory exists on this machine.
 */
export interface Corpus {
  name: string;
  dir: string;
  /** How to install it, for the skip notice. */
  install: string;
  files: string[];
}

function list(dir: string, match: RegExp): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => match.test(f))
    .sort()
    .map((f) => join(dir, f));
}

const ENMIME = '/usr/share/gocode/src/github.com/jhillyerd/enmime/testdata';

export function pythonEmailCorpus(): Corpus {
  const dir = '/usr/lib/python3.11/test/test_email/data';
  return { name: 'python-email', dir, install: 'apt-get install -y libpython3.11-testsuite', files: list(dir, /^msg_.*\.txt$/) };
}

export function enmimeCorpus(): Corpus {
  const dir = join(ENMIME, 'mail');
  return { name: 'enmime-mail', dir, install: 'apt-get install -y golang-github-jhillyerd-enmime-dev', files: list(dir, /\.raw$/) };
}

export function enmimeLowQualityCorpus(): Corpus {
  const dir = join(ENMIME, 'low-quality');
  return { name: 'enmime-low-quality', dir, install: 'apt-get install -y golang-github-jhillyerd-enmime-dev', files: list(dir, /\.raw$/) };
}

/** The corpora files use LF; SMTP carries CRLF. Converts bare LF (and lone CR) to CRLF, bytes kept. */
export function toCrlf(raw: Buffer): Buffer {
  return Buffer.from(raw.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
}

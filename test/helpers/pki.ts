import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A certificate and its key, as PEM files in the test's directory. */
export interface Issued {
  cert: string;
  key: string;
  /** The certificate's SHA-256 fingerprint, as `X509Certificate.fingerprint256` prints it. */
  fingerprint: string;
}

/** A throw-away set of authorities and certificates generated with openssl for one test file. */
export interface Pki {
  dir: string;
  /** The authority that signs the server and the good client certificates. */
  ca: Issued;
  /** An unrelated authority, for "wrong CA" cases. */
  otherCa: Issued;
  /** Issues a certificate signed by `issuer` (CA and leaf keys are P-256, valid for a day). */
  issue(name: string, issuer: Issued, options?: { san?: string; usage?: 'serverAuth' | 'clientAuth'; password?: string }): Issued;
  /** Makes a self-signed certificate and its key in one PEM file, as websockify's docs suggest for self.pem. */
  selfSigned(name: string): { file: string; fingerprint: string };
  /** Removes the directory. */
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function fingerprintOf(certFile: string): string {
  return new X509Certificate(fs.readFileSync(certFile)).fingerprint256;
}

/** Makes a CA with `req -x509` in `dir`. */
function makeCa(dir: string, name: string): Issued {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return { cert, key, fingerprint: fingerprintOf(cert) };
}

/** Creates a temporary directory with two CAs; certificates are issued on demand. */
export function createPki(): Pki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsfy-pki-'));
  let serial = 1;
  return {
    dir,
    ca: makeCa(dir, 'ca'),
    otherCa: makeCa(dir, 'other-ca'),
    issue(name, issuer, options = {}) {
      const cert = path.join(dir, `${name}.crt`);
      const key = path.join(dir, `${name}.key`);
      const csr = path.join(dir, `${name}.csr`);
      const ext = path.join(dir, `${name}.ext`);
      const usage = options.usage ?? 'serverAuth';
      const san = options.san ?? (usage === 'serverAuth' ? 'DNS:localhost,IP:127.0.0.1,IP:::1' : undefined);
      fs.writeFileSync(
        ext,
        `${['basicConstraints=CA:FALSE', `extendedKeyUsage=${usage}`, ...(san ? [`subjectAltName=${san}`] : [])].join('\n')}\n`,
      );
      const keyArgs = options.password ? ['-passout', `pass:${options.password}`] : ['-nodes'];
      openssl(
        [
          'req',
          '-new',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          ...keyArgs,
          '-keyout',
          key,
          '-out',
          csr,
          '-subj',
          `/CN=${name}`,
        ],
        dir,
      );
      openssl(
        [
          'x509',
          '-req',
          '-in',
          csr,
          '-CA',
          issuer.cert,
          '-CAkey',
          issuer.key,
          '-set_serial',
          String(serial++),
          '-days',
          '1',
          '-extfile',
          ext,
          '-out',
          cert,
        ],
        dir,
      );
      return { cert, key, fingerprint: fingerprintOf(cert) };
    },
    selfSigned(name) {
      const file = path.join(dir, `${name}.pem`);
      openssl(
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-out',
          file,
          '-keyout',
          file,
          '-days',
          '1',
          '-subj',
          '/CN=localhost',
          '-addext',
          'subjectAltName=DNS:localhost,IP:127.0.0.1',
        ],
        dir,
      );
      return { file, fingerprint: fingerprintOf(file) };
    },
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** Replaces `file` atomically (write a sibling, then rename over it), as deployment tools do. */
export function replaceAtomically(file: string, content: string | Buffer): void {
  const temp = `${file}.new-${process.pid}`;
  fs.writeFileSync(temp, content);
  fs.renameSync(temp, file);
}

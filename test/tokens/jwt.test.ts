// JWTTokenApi through the real CLI, with keys generated here: an HMAC secret, an RSA private key, an EC
// public key; signed, encrypted, expired, not yet valid, and wrong-key tokens.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createSecretKey, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CompactEncrypt, EncryptJWT, SignJWT } from 'jose';
import { type RunningProxy, runCli, startProxy } from '../helpers/proxy.js';
import type { TestServer } from '../helpers/targets.js';
import { attempt, type Outcome, startNamedServer, tempDir } from './support.js';

const temp = tempDir();
let a: TestServer;
let b: TestServer;
const secretBytes = randomBytes(32);
const secret = createSecretKey(secretBytes);
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const now = (): number => Math.floor(Date.now() / 1000);

/** A signed JWT with `claims` (host/port of a target, times). */
function sign(claims: Record<string, unknown>, key: KeyObject, alg: string): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg }).sign(key);
}

/** The reason of a refusal, asserting its status. */
function refusedWith(outcome: Outcome, status: number): string {
  assert.equal(outcome.status, status, JSON.stringify(outcome));
  return (outcome as { body: string }).body;
}

let hmacProxy: RunningProxy;
let rsaProxy: RunningProxy;
let ecProxy: RunningProxy;

before(async () => {
  [a, b] = await Promise.all([startNamedServer('server A'), startNamedServer('server B')]);
  const files = {
    secret: path.join(temp.dir, 'secret.key'),
    rsa: path.join(temp.dir, 'rsa-private.pem'),
    ec: path.join(temp.dir, 'ec-public.pem'),
  };
  // As jwcrypto's JWK 'k': base64url; a trailing newline as an editor leaves it.
  fs.writeFileSync(files.secret, `${secretBytes.toString('base64url')}\n`);
  fs.writeFileSync(files.rsa, rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  fs.writeFileSync(files.ec, ec.publicKey.export({ type: 'spki', format: 'pem' }));
  const start = (file: string): Promise<RunningProxy> =>
    startProxy(['--token-plugin', 'JWTTokenApi', '--token-source', file, '127.0.0.1:0']);
  [hmacProxy, rsaProxy, ecProxy] = await Promise.all([start(files.secret), start(files.rsa), start(files.ec)]);
});
after(async () => {
  await Promise.all([hmacProxy?.stop(), rsaProxy?.stop(), ecProxy?.stop()]);
  await Promise.all([a?.close(), b?.close()]);
  temp.remove();
});

describe('JWTTokenApi: signed tokens', () => {
  test('HS256 with the shared secret: host and port claims choose the target', async () => {
    const toA = await sign({ host: '127.0.0.1', port: a.port }, secret, 'HS256');
    const toB = await sign({ host: '127.0.0.1', port: String(b.port), exp: now() + 600, nbf: now() - 60 }, secret, 'HS256');
    assert.deepEqual(await attempt(`${hmacProxy.url}/?token=${toA}`), { status: 101, said: 'server A' });
    assert.deepEqual(await attempt(`${hmacProxy.url}/websockify?token=${toB}`), { status: 101, said: 'server B' });
  });

  test('RS256 verified with the public half of the private key file', async () => {
    const token = await sign({ host: '127.0.0.1', port: b.port }, rsa.privateKey, 'RS256');
    assert.deepEqual(await attempt(`${rsaProxy.url}/?token=${token}`), { status: 101, said: 'server B' });
  });

  test('ES256 verified with a public key file', async () => {
    const token = await sign({ host: '127.0.0.1', port: a.port }, ec.privateKey, 'ES256');
    assert.deepEqual(await attempt(`${ecProxy.url}/?token=${token}`), { status: 101, said: 'server A' });
  });

  test('expired: 403 "token expired", and a log line', async () => {
    const token = await sign({ host: '127.0.0.1', port: a.port, exp: now() - 60 }, secret, 'HS256');
    assert.match(refusedWith(await attempt(`${hmacProxy.url}/?token=${token}`), 403), /token expired/);
    await hmacProxy.waitForEvent((e) => e.event === 'refused' && e.status === 403 && e.reason === 'token expired');
  });

  test('not yet valid (nbf in the future): 403', async () => {
    const token = await sign({ host: '127.0.0.1', port: a.port, nbf: now() + 600 }, secret, 'HS256');
    assert.match(refusedWith(await attempt(`${hmacProxy.url}/?token=${token}`), 403), /not valid yet/);
  });

  test('signed with another key: 403, for each kind of key', async () => {
    const otherSecret = await sign({ host: '127.0.0.1', port: a.port }, createSecretKey(randomBytes(32)), 'HS256');
    assert.match(refusedWith(await attempt(`${hmacProxy.url}/?token=${otherSecret}`), 403), /signature/);
    const otherRsa = await sign(
      { host: '127.0.0.1', port: a.port },
      generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
      'RS256',
    );
    assert.match(refusedWith(await attempt(`${rsaProxy.url}/?token=${otherRsa}`), 403), /signature/);
    // An HMAC token signed with the RSA public key as secret (algorithm confusion) is refused too.
    const confused = await sign(
      { host: '127.0.0.1', port: a.port },
      createSecretKey(Buffer.from(rsa.publicKey.export({ type: 'spki', format: 'pem' }))),
      'HS256',
    );
    assert.equal((await attempt(`${rsaProxy.url}/?token=${confused}`)).status, 403);
  });

  test('garbage, or claims without host and port: 403', async () => {
    assert.match(refusedWith(await attempt(`${hmacProxy.url}/?token=not-a-jwt`), 403), /malformed/);
    const noHost = await sign({ port: a.port }, secret, 'HS256');
    assert.match(refusedWith(await attempt(`${hmacProxy.url}/?token=${noHost}`), 403), /host/);
  });
});

describe('JWTTokenApi: encrypted tokens', () => {
  test('RSA: a signed JWT encrypted to the public key (as Python websockify expects) is decrypted with the private key', async () => {
    const inner = await sign({ host: '127.0.0.1', port: a.port, exp: now() + 600 }, rsa.privateKey, 'RS256');
    const token = await new CompactEncrypt(new TextEncoder().encode(inner))
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', cty: 'JWT' })
      .encrypt(rsa.publicKey);
    assert.equal(token.split('.').length, 5);
    assert.deepEqual(await attempt(`${rsaProxy.url}/?token=${token}`), { status: 101, said: 'server A' });
  });

  test('RSA: encrypted claims without a signature inside are refused (anyone may encrypt to a public key)', async () => {
    const token = await new EncryptJWT({ host: '127.0.0.1', port: a.port })
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM' })
      .encrypt(rsa.publicKey);
    assert.match(refusedWith(await attempt(`${rsaProxy.url}/?token=${token}`), 403), /without a signed JWT/);
  });

  test('secret key: encrypted claims (dir, A256GCM) and a nested signed JWT both work; expiry still applies', async () => {
    const plain = await new EncryptJWT({ host: '127.0.0.1', port: b.port })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .encrypt(secret);
    assert.deepEqual(await attempt(`${hmacProxy.url}/?token=${plain}`), { status: 101, said: 'server B' });
    const inner = await sign({ host: '127.0.0.1', port: a.port }, secret, 'HS256');
    const nested = await new CompactEncrypt(new TextEncoder().encode(inner))
      .setProtectedHeader({ alg: 'A256KW', enc: 'A256GCM' })
      .encrypt(secret);
    assert.deepEqual(await attempt(`${hmacProxy.url}/?token=${nested}`), { status: 101, said: 'server A' });
    const expired = await new EncryptJWT({ host: '127.0.0.1', port: b.port, exp: now() - 60 })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .encrypt(secret);
    assert.match(refusedWith(await attempt(`${hmacProxy.url}/?token=${expired}`), 403), /expired/);
  });

  test('encrypted with another key: 403; with a public key file only: 403 saying so', async () => {
    const other = await new EncryptJWT({ host: '127.0.0.1', port: b.port })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .encrypt(createSecretKey(randomBytes(32)));
    assert.match(refusedWith(await attempt(`${hmacProxy.url}/?token=${other}`), 403), /decrypted/);
    const toEc = await new EncryptJWT({ host: '127.0.0.1', port: b.port })
      .setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM' })
      .encrypt(ec.publicKey);
    assert.match(refusedWith(await attempt(`${ecProxy.url}/?token=${toEc}`), 403), /public key only/);
  });
});

describe('JWTTokenApi: key files', () => {
  test('a key file that is neither PEM nor base64url, or is missing, stops the start with a reason', async () => {
    const bad = path.join(temp.dir, 'bad.key');
    fs.writeFileSync(bad, 'this is not a key!\n');
    const garbled = await runCli(['--token-plugin', 'JWTTokenApi', '--token-source', bad, '127.0.0.1:0']);
    assert.equal(garbled.code, 1);
    assert.match(garbled.stderr, /neither a PEM key nor a base64url-encoded secret/);
    const missing = await runCli(['--token-plugin', 'JWTTokenApi', '--token-source', path.join(temp.dir, 'absent.pem'), '127.0.0.1:0']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read key file .*absent\.pem: ENOENT/);
    const badPem = path.join(temp.dir, 'bad.pem');
    fs.writeFileSync(badPem, '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n');
    const pem = await runCli(['--token-plugin', 'JWTTokenApi', '--token-source', badPem, '127.0.0.1:0']);
    assert.equal(pem.code, 1);
    assert.match(pem.stderr, /no usable PEM key/);
  });
});

/** Mints, with Python's jwcrypto (what Python websockify uses), key files and tokens for a target port. */
const JWCRYPTO_MINT = `
import json, os, sys
from jwcrypto import jwk, jwt
out, port = sys.argv[1], int(sys.argv[2])
claims = {'host': '127.0.0.1', 'port': port}
secret = jwk.JWK.generate(kty='oct', size=256)
open(os.path.join(out, 'py-secret.key'), 'w').write(secret.export(as_dict=True)['k'])
rsa = jwk.JWK.generate(kty='RSA', size=2048)
open(os.path.join(out, 'py-rsa.pem'), 'wb').write(rsa.export_to_pem(private_key=True, password=None))
def signed(key, alg):
    token = jwt.JWT(header={'alg': alg}, claims=claims)
    token.make_signed_token(key)
    return token.serialize()
def encrypted(inner, key, alg):
    token = jwt.JWT(header={'alg': alg, 'enc': 'A256GCM'}, claims=inner)
    token.make_encrypted_token(key)
    return token.serialize()
print(json.dumps({
    'hs': signed(secret, 'HS256'),
    'hsJwe': encrypted(signed(secret, 'HS256'), secret, 'A256KW'),
    'rs': signed(rsa, 'RS256'),
    'rsJwe': encrypted(signed(rsa, 'RS256'), rsa, 'RSA-OAEP-256'),
}))
`;

describe('JWTTokenApi: key files and tokens made by Python websockify (jwcrypto)', () => {
  test('signed and encrypted tokens, with a secret and with an RSA key, route as they do in Python', async () => {
    const minted = spawnSync('/usr/bin/python3', ['-c', JWCRYPTO_MINT, temp.dir, String(a.port)], { encoding: 'utf8' });
    assert.equal(minted.status, 0, `python3-jwcrypto (a dependency of Debian's websockify) is needed: ${minted.stderr}`);
    const tokens = JSON.parse(minted.stdout) as Record<'hs' | 'hsJwe' | 'rs' | 'rsJwe', string>;
    const start = (file: string): Promise<RunningProxy> =>
      startProxy(['--token-plugin', 'JWTTokenApi', '--token-source', path.join(temp.dir, file), '127.0.0.1:0']);
    const [bySecret, byRsa] = await Promise.all([start('py-secret.key'), start('py-rsa.pem')]);
    try {
      for (const token of [tokens.hs, tokens.hsJwe])
        assert.deepEqual(await attempt(`${bySecret.url}/?token=${token}`), { status: 101, said: 'server A' });
      for (const token of [tokens.rs, tokens.rsJwe])
        assert.deepEqual(await attempt(`${byRsa.url}/?token=${token}`), { status: 101, said: 'server A' });
      assert.equal((await attempt(`${byRsa.url}/?token=${tokens.hs}`)).status, 403);
    } finally {
      await Promise.all([bySecret.stop(), byRsa.stop()]);
    }
  });
});

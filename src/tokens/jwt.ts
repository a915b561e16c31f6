import { createPrivateKey, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { compactDecrypt, errors, type JWTPayload, jwtDecrypt, jwtVerify } from 'jose';
import { StartupError } from '../errors.js';
import type { Target } from '../targets/target.js';
import { cachedLookup, type FreshAnswer } from './cache.js';
import { type TokenPlugin, type TokenPluginContext, TokenRejectedError } from './plugin.js';
import { parseTargetJson } from './target-text.js';

/** The key of `--token-source`, as each use needs it. */
interface Keys {
  /** Checks signatures: the public key, or the HMAC secret. */
  verify: KeyObject;
  /** Decrypts JWE tokens: the private key or the secret; absent with a public key only. */
  decrypt: KeyObject | undefined;
  /** An HMAC secret: whoever can encrypt can also sign, so an encrypted token need not be signed too. */
  symmetric: boolean;
}

/**
 * Reads the key file as Python websockify does: a PEM key (RSA or EC; a private key both verifies and
 * decrypts, a public key or certificate only verifies), or else the whole text is the base64url HMAC
 * secret (a JWK `k` value).
 * @throws StartupError when the file cannot be read or holds neither.
 */
function readKeys(file: string): Keys {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new StartupError(`JWTTokenApi: cannot read key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (text.includes('-----BEGIN ')) {
    try {
      const key = createPrivateKey(text);
      return { verify: createPublicKey(key), decrypt: key, symmetric: false };
    } catch {
      // Not a private key: a public key or a certificate, below.
    }
    try {
      return { verify: createPublicKey(text), decrypt: undefined, symmetric: false };
    } catch (err) {
      throw new StartupError(
        `JWTTokenApi: key file ${file} holds no usable PEM key (encrypted keys are not supported): ${(err as Error).message}`,
      );
    }
  }
  const secret = text.trim();
  if (!/^[A-Za-z0-9_-]+$/.test(secret)) {
    throw new StartupError(`JWTTokenApi: key file ${file} is neither a PEM key nor a base64url-encoded secret`);
  }
  const key = createSecretKey(Buffer.from(secret, 'base64url'));
  return { verify: key, decrypt: key, symmetric: true };
}

/** A token refused as not valid yet becomes valid at its `nbf` (ms since the epoch): no cache may keep the refusal longer. */
function notBefore(err: unknown): number | undefined {
  if (!(err instanceof errors.JWTClaimValidationFailed) || err.claim !== 'nbf') return undefined;
  const nbf = err.payload.nbf;
  return typeof nbf === 'number' ? nbf * 1000 : undefined;
}

/** The reason a client is told when jose refuses a token. */
function rejection(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'token expired';
  if (err instanceof errors.JWTClaimValidationFailed)
    return err.claim === 'nbf' ? 'token not valid yet' : `token claim '${err.claim}' is not valid`;
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'token signature does not match the key';
  if (err instanceof errors.JWEDecryptionFailed) return 'token cannot be decrypted with the key';
  return 'malformed or unsupported token';
}

/**
 * `JWTTokenApi`: the token is a JWT carrying `host` and `port` claims, signed (JWS), or encrypted (JWE)
 * around a signed JWT as Python websockify expects; with an HMAC secret an encrypted token may also carry
 * the claims directly. `exp` and `nbf` are enforced. An invalid token is refused with 403 and its reason.
 * The key file is read once, at start-up. With `--token-cache` a valid token's target is kept no longer than
 * its `exp`, a refusal as not valid yet no longer than its `nbf`.
 * @throws StartupError when the key file is unusable.
 */
export function createJwtPlugin(source: string | undefined, context: TokenPluginContext): TokenPlugin {
  if (!source) throw new StartupError('JWTTokenApi needs --token-source KEYFILE (a PEM key, or a base64url HMAC secret)');
  const keys = readKeys(path.resolve(source));
  const claimsOf = async (token: string): Promise<JWTPayload> => {
    const parts = token.split('.').length;
    if (parts === 3) return (await jwtVerify(token, keys.verify)).payload;
    if (parts !== 5) throw new errors.JWTInvalid('not a compact JWS or JWE');
    if (!keys.decrypt) throw new TokenRejectedError('encrypted token, but the key file holds a public key only');
    const inner = new TextDecoder().decode((await compactDecrypt(token, keys.decrypt)).plaintext);
    if (/^[\w-]+\.[\w-]+\.[\w-]+$/.test(inner)) return (await jwtVerify(inner, keys.verify)).payload;
    // Anyone with a public key could encrypt claims to it: only a secret key makes them trustworthy unsigned.
    if (!keys.symmetric) throw new TokenRejectedError('encrypted token without a signed JWT inside');
    return (await jwtDecrypt(token, keys.decrypt)).payload;
  };
  const ask = async (token: string): Promise<FreshAnswer> => {
    let claims: JWTPayload;
    try {
      claims = await claimsOf(token);
    } catch (err) {
      if (err instanceof TokenRejectedError) throw err;
      const reason = rejection(err);
      context.logger.info(
        { event: 'token-rejected', reason, err: (err as Error).message },
        `JWTTokenApi: ${reason}: ${(err as Error).message}`,
      );
      throw new TokenRejectedError(reason, { until: notBefore(err) });
    }
    let target: Target;
    try {
      target = parseTargetJson(claims);
    } catch (err) {
      throw new TokenRejectedError(`token claims: ${(err as Error).message}`);
    }
    return { target, until: typeof claims.exp === 'number' ? claims.exp * 1000 : undefined };
  };
  return { lookup: cachedLookup(context.cache, ask) };
}

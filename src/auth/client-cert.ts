import { HttpError, StartupError } from '../errors.js';
import type { AuthPlugin } from './plugin.js';

/**
 * `ClientCertCNAuth`: the client certificate verified by TLS (`--verify-client`) must have a subject
 * common name among the whitespace-separated names in `--auth-source`; otherwise 403. Only the
 * certificate counts: headers such as `SSL_CLIENT_S_DN_CN` are the client's word and are ignored.
 * @throws StartupError when the source lists no name.
 */
export function createClientCertCnAuth(source: string | undefined): AuthPlugin {
  const allowed = new Set((source ?? '').split(/\s+/).filter((name) => name !== ''));
  if (allowed.size === 0) throw new StartupError('ClientCertCNAuth: --auth-source must list the allowed certificate common names');
  return {
    authenticate(request) {
      const certificate = request.peerCertificate;
      if (!certificate) throw new HttpError(403, 'no verified client certificate (ClientCertCNAuth)');
      // The parsed subject rather than the printed one: a value holding "\nCN=..." cannot pose as a field.
      const cn = (certificate.toLegacyObject().subject as Record<string, string | string[] | undefined> | undefined)?.CN;
      // A subject with several common names is ambiguous; refuse rather than pick one.
      if (typeof cn !== 'string')
        throw new HttpError(403, `client certificate has ${cn === undefined ? 'no' : 'more than one'} common name`);
      if (!allowed.has(cn)) throw new HttpError(403, `client certificate common name '${cn}' is not allowed`);
    },
  };
}

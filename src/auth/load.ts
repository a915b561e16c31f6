import { HttpError, StartupError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { isModulePath, loadPluginModule } from '../plugin-module.js';
import { createBasicHttpAuth } from './basic.js';
import { createClientCertCnAuth } from './client-cert.js';
import { createExpectOrigin } from './origin.js';
import type { AuthPlugin } from './plugin.js';

/** What a plugin factory is given besides its source. */
export interface AuthPluginContext {
  /** The proxy's logger, for the plugin's own lines. */
  logger: Logger;
}

/**
 * The interface of a user's own plugin module (`--auth-plugin ./my-auth.js`): its default export is a
 * factory called once at start-up with `--auth-source` (undefined without it). Throwing from the
 * factory stops the start with that message. The plugin's `authenticate` refuses a request by
 * throwing an error with a numeric `status` (400-499, such as 401 or 403) and optionally `headers`
 * (such as `WWW-Authenticate`); any other error is answered with 500 and logged.
 */
export type AuthPluginFactory = (source: string | undefined, context: AuthPluginContext) => AuthPlugin | Promise<AuthPlugin>;

/** The built-in plugins, by Python websockify's class names. */
const BUILTIN: Readonly<Record<string, AuthPluginFactory>> = {
  BasicHTTPAuth: createBasicHttpAuth,
  ExpectOrigin: createExpectOrigin,
  ClientCertCNAuth: createClientCertCnAuth,
};

/** The built-in plugins' factories by name, for library users who build a plugin themselves. */
export const builtInAuthPlugins: Readonly<Record<string, AuthPluginFactory>> = BUILTIN;

/** Python websockify's module path, accepted before a built-in name so that its command lines carry over. */
const PYTHON_PREFIX = 'websockify.auth_plugins.';

/** The built-in plugin's name that `name` means (`BasicHTTPAuth` or `websockify.auth_plugins.BasicHTTPAuth`), or undefined. */
export function builtinAuthPluginName(name: string): string | undefined {
  const bare = name.startsWith(PYTHON_PREFIX) ? name.slice(PYTHON_PREFIX.length) : name;
  return Object.hasOwn(BUILTIN, bare) ? bare : undefined;
}

/** A refusal from a user's plugin, in the shape the upgrade stage answers. */
function asHttpError(err: unknown): unknown {
  if (err instanceof HttpError) return err;
  const { status, headers, message } = (err ?? {}) as { status?: unknown; headers?: unknown; message?: unknown };
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 499) return err;
  const extra: Record<string, string> = {};
  if (headers && typeof headers === 'object') {
    for (const [key, value] of Object.entries(headers)) if (typeof value === 'string') extra[key] = value;
  }
  return new HttpError(status, typeof message === 'string' && message !== '' ? message : 'refused by the auth plugin', extra);
}

/** A user's module's plugin, its refusals turned into the answers the upgrade stage gives. */
async function loadModule(file: string, source: string | undefined, context: AuthPluginContext): Promise<AuthPlugin> {
  return guarded(
    await loadPluginModule<AuthPlugin>(file, { name: 'auth plugin', method: 'authenticate', parameters: 'request' }, source, context),
  );
}

/** A user's plugin (a module's, or a library user's object), its refusals turned into HTTP answers. */
function guarded(plugin: AuthPlugin): AuthPlugin {
  return {
    async authenticate(request) {
      try {
        await plugin.authenticate(request);
      } catch (err) {
        throw asHttpError(err);
      }
    },
  };
}

/**
 * Builds the `--auth-plugin` plugin: a built-in by name (`BasicHTTPAuth`, `ExpectOrigin`,
 * `ClientCertCNAuth`), a user's module by path (see {@link AuthPluginFactory}), or a plugin object.
 * @throws StartupError for an unknown name, a module that does not load, or a source the plugin rejects.
 */
export async function loadAuthPlugin(name: string | AuthPlugin, source: string | undefined, logger: Logger): Promise<AuthPlugin> {
  if (typeof name !== 'string') return guarded(name);
  const context: AuthPluginContext = { logger };
  const builtin = builtinAuthPluginName(name);
  if (builtin) return BUILTIN[builtin]!(source, context);
  if (isModulePath(name)) return loadModule(name, source, context);
  throw new StartupError(
    `--auth-plugin: unknown plugin '${name}' (built-in: ${Object.keys(BUILTIN).join(', ')}; or a path to your own module, such as ./my-auth.js)`,
  );
}

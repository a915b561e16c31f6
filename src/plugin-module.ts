import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { StartupError } from './errors.js';

/**
 * Whether `--token-plugin` or `--auth-plugin` names a module file (a path, or a file name ending in .js,
 * .mjs or .cjs) rather than a built-in plugin.
 */
export function isModulePath(name: string): boolean {
  return name.includes('/') || name.includes(path.sep) || /\.[cm]?js$/.test(name);
}

/** The kind of plugin a user's module is to make, for {@link loadPluginModule}'s check and messages. */
export interface PluginKind {
  /** The kind in messages: 'token plugin', 'auth plugin'. */
  name: string;
  /** The method every plugin of the kind has: 'lookup', 'authenticate'. */
  method: string;
  /** The method's parameters as messages show them: 'token', 'request'. */
  parameters: string;
}

/**
 * Imports a user's plugin module and makes its plugin. The module's default export is a factory, called
 * once with `source` (the plugin's `--*-source`, undefined without it) and `context`; what it returns,
 * or resolves to, must have the kind's method. What the plugin does when called is the caller's to guard.
 * @param file the module's path, relative to the working directory or absolute.
 * @throws StartupError naming the module: it does not load, has no factory, the factory throws (its
 * message), or the plugin lacks the method.
 */
export async function loadPluginModule<Plugin>(
  file: string,
  kind: PluginKind,
  source: string | undefined,
  context: unknown,
): Promise<Plugin> {
  const where = path.resolve(file);
  const what = `${kind.name} module ${where}`;
  let factory: unknown;
  try {
    factory = ((await import(pathToFileURL(where).href)) as { default?: unknown }).default;
  } catch (err) {
    throw new StartupError(`cannot load ${what}: ${messageOf(err)}`);
  }
  if (typeof factory !== 'function') throw new StartupError(`${what}: its default export must be a function (source, context) => plugin`);
  let plugin: unknown;
  try {
    plugin = await factory(source, context);
  } catch (err) {
    throw new StartupError(`${what}: ${messageOf(err)}`);
  }
  if (typeof (plugin as Record<string, unknown> | null | undefined)?.[kind.method] !== 'function') {
    throw new StartupError(`${what}: its factory must return an object with the ${kind.method}(${kind.parameters}) method`);
  }
  return plugin as Plugin;
}

/** A thrown value's message: users' modules may throw anything, not only Errors. */
function messageOf(err: unknown): string {
  const message = (err as { message?: unknown } | null | undefined)?.message;
  return typeof message === 'string' ? message : String(err);
}

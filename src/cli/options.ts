import { resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { parseTargetPattern, type TargetPattern } from '../admission/policy.js';
import { builtinAuthPluginName } from '../auth/load.js';
import { type Config, DEFAULTS, type ListenSpec, type WrapMode } from '../config.js';
import { UsageError } from '../errors.js';
import { parseSyslogServer } from '../log/syslog.js';
import { isModulePath } from '../plugin-module.js';
import { parseHostPort } from '../targets/address.js';
import type { Target, TargetTls } from '../targets/target.js';
import { TLS_DEFAULTS, type TlsMinVersion } from '../tls/context.js';
import { builtInTokenPlugin, TOKEN_PLUGIN_NAMES } from '../tokens/load.js';

const USAGE = `[options] [source_addr:]source_port [target_addr:target_port]
       websockify [options] --unix-listen FILE|--inetd [target_addr:target_port]
       websockify [options] [source_addr:]source_port --unix-target FILE
       websockify [options] [source_addr:]source_port --token-plugin NAME [--token-source ARG]
       websockify [options] [source_addr:]source_port -- PROGRAM [ARGS...]`;

/** A non-negative number of seconds (fractions allowed, as in Python websockify). */
function seconds(text: string): number {
  // Plain decimals only: Number() would also take '0x10', '1e3' and '' (as 0).
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(text)) throw new InvalidArgumentError('expected a number of seconds (0 or more).');
  return Number(text);
}

/** A positive whole number of bytes. */
function bytes(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new InvalidArgumentError('expected a positive number of bytes.');
  return Number(text);
}

/** An octal file mode such as 0600. */
function fileMode(text: string): number {
  if (!/^0?[0-7]{3}$/.test(text)) throw new InvalidArgumentError('expected an octal mode such as 0600.');
  return parseInt(text, 8);
}

/** A syslog server as `--syslog` takes it, checked now so that a typo is a usage error rather than a crash. */
function syslogServer(text: string): string {
  try {
    parseSyslogServer(text);
  } catch (err) {
    throw new InvalidArgumentError(`${(err as Error).message}.`);
  }
  return text;
}

/** Collects the repeatable `--allow-target`, each pattern checked now so that a typo is a usage error. */
function allowTargetPattern(text: string, previous: TargetPattern[]): TargetPattern[] {
  try {
    return [...previous, parseTargetPattern(text)];
  } catch (err) {
    throw new InvalidArgumentError(`${(err as Error).message}.`);
  }
}

/** The command line's grammar: every option, its help text and its default. */
export function buildProgram(): Command {
  return new Command('websockify')
    .usage(USAGE)
    .description('WebSocket-to-TCP proxy: accepts WebSocket connections and moves their bytes to a TCP or Unix socket target.')
    .argument('[listen]', '[source_addr:]source_port to listen on; IPv6 literals in brackets ([::1]:6080)')
    .argument('[target]', 'target_addr:target_port to connect each WebSocket to')
    .option('-v, --verbose', 'verbose messages (debug-level events)')
    .option('--traffic', 'print a character per message moved: } from the client, { from the target')
    .option('--record <file>', "record each session to FILE.<session number>, in the format of noVNC's playback page")
    .option('--run-once', 'handle a single WebSocket session, then exit')
    .option('--timeout <seconds>', 'after SECONDS stop accepting, and exit once no session is open (0: never)', seconds, DEFAULTS.timeout)
    .option('--idle-timeout <seconds>', 'exit after SECONDS without any open session (0: never)', seconds, DEFAULTS.idleTimeout)
    .option(
      '--heartbeat <seconds>',
      'ping each client every SECONDS; drop it when the pong is not back by the next ping (0: off)',
      seconds,
      DEFAULTS.heartbeat,
    )
    .option('-6, --prefer-ipv6', 'prefer IPv6 when resolving host names (listen and target)')
    .option('--unix-listen <file>', 'listen on a Unix socket FILE instead of a TCP port')
    .addOption(
      new Option('--unix-listen-mode <mode>', 'file mode of the --unix-listen socket, in octal')
        .argParser(fileMode)
        .default(DEFAULTS.unixListenMode, `0${DEFAULTS.unixListenMode.toString(8)}`),
    )
    .option('--inetd', 'the listening socket is stdin (fd 0), as passed by inetd or systemd')
    .option('--unix-target <file>', 'connect each WebSocket to the Unix socket FILE')
    .option('--log-file <file>', 'also append log lines to FILE')
    .option('--syslog <server>', 'also log to syslog: a local socket such as /dev/log, or a UDP host:port', syslogServer)
    .option('--legacy-syslog', 'use the old syslog format (RFC 3164) instead of RFC 5424')
    .addOption(new Option('--log-format <format>', 'log line format').choices(['text', 'json']).default('text'))
    .option(
      '--handshake-timeout <seconds>',
      'drop a connection whose handshake is not complete after SECONDS',
      seconds,
      DEFAULTS.handshakeTimeout,
    )
    .option('--connect-timeout <seconds>', 'give up connecting to the target after SECONDS (close 1011)', seconds, DEFAULTS.connectTimeout)
    .option(
      '--shutdown-timeout <seconds>',
      'on SIGINT/SIGTERM, wait up to SECONDS for sessions to close',
      seconds,
      DEFAULTS.shutdownTimeout,
    )
    .option(
      '--max-message-size <bytes>',
      'largest WebSocket message accepted from a client (close 1009 beyond)',
      bytes,
      DEFAULTS.maxMessageSize,
    )
    .option('--max-header-size <bytes>', 'largest HTTP request head accepted (431 beyond)', bytes, DEFAULTS.maxHeaderSize)
    .option('--cert <file>', 'TLS certificate file (may also hold the key); TLS is off when the default is absent', TLS_DEFAULTS.cert)
    .option('--key <file>', 'TLS private key file, if separate from the certificate')
    .option('--key-password <password>', 'password of an encrypted TLS private key')
    .option('--ssl-only', 'refuse plain (non-TLS) connections')
    .option('--ssl-ciphers <list>', 'OpenSSL cipher list allowed for TLS 1.2 and below')
    .addOption(
      new Option('--ssl-version <version>', 'lowest TLS version accepted')
        .choices(['default', 'tlsv1_1', 'tlsv1_2', 'tlsv1_3'])
        .default(TLS_DEFAULTS.minVersion),
    )
    .option('--verify-client', 'require TLS clients to present a certificate signed by --cafile')
    .option('--cafile <file>', 'authorities trusted for client certificates (default: the system trust store)')
    .option('--ssl-target', 'connect to the target over TLS, verifying its certificate')
    .option('--ssl-target-ca <file>', 'with --ssl-target, trust only the authorities in FILE')
    .option('--ssl-target-insecure', 'with --ssl-target, accept any target certificate (self-signed targets)')
    .option('--web <dir>', 'serve static files from DIR on the same port')
    .option('--file-only', 'with --web, no directory listings')
    .option(
      '--token-plugin <name>',
      `choose each connection's target by its token: ${TOKEN_PLUGIN_NAMES.join(', ')}, or the path of your own module`,
    )
    .option('--token-source <arg>', "the token plugin's argument (a file, directory, URL, key file or Redis address)")
    .option('--host-token', 'take the token from the Host header instead of the token query parameter')
    .option('--target-config <file>', 'deprecated: the same as --token-plugin TokenFile --token-source FILE')
    .option(
      '--auth-plugin <name>',
      'check each handshake with a plugin: BasicHTTPAuth, ExpectOrigin, ClientCertCNAuth, or the path of your own module',
    )
    .option('--auth-source <arg>', "the auth plugin's argument (user:password; allowed origins; allowed certificate common names)")
    .option('--web-auth', 'with --web and --auth-plugin, check web requests too')
    .option(
      '--allow-target <pattern>',
      'connect only to targets matching PATTERN (repeatable): host, *.domain, IP, CIDR, each with an optional :port or :low-high; unix:PATH',
      allowTargetPattern,
      [],
    )
    .option('-D, --daemon', 'run in the background once listening')
    .option('--pid-file <file>', 'write the process id to FILE, removed on a clean exit')
    .addOption(
      new Option(
        '--wrap-mode <mode>',
        'when the wrapped program (-- PROGRAM) exits: exit with its status, ignore it and keep serving, or respawn it',
      )
        .choices(['exit', 'ignore', 'respawn'])
        .default('exit'),
    )
    .helpOption('-h, --help', 'show this help and exit')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeErr: () => undefined });
}

interface ParsedOptions {
  cert: string;
  key?: string;
  keyPassword?: string;
  sslOnly?: true;
  sslCiphers?: string;
  sslVersion: TlsMinVersion;
  verifyClient?: true;
  cafile?: string;
  sslTarget?: true;
  sslTargetCa?: string;
  sslTargetInsecure?: true;
  web?: string;
  fileOnly?: true;
  tokenPlugin?: string;
  tokenSource?: string;
  hostToken?: true;
  targetConfig?: string;
  authPlugin?: string;
  authSource?: string;
  webAuth?: true;
  allowTarget: TargetPattern[];
  daemon?: true;
  pidFile?: string;
  wrapMode: WrapMode;
  verbose?: true;
  traffic?: true;
  record?: string;
  runOnce?: true;
  timeout: number;
  idleTimeout: number;
  heartbeat: number;
  preferIpv6?: true;
  unixListen?: string;
  unixListenMode: number;
  inetd?: true;
  unixTarget?: string;
  logFile?: string;
  syslog?: string;
  legacySyslog?: true;
  logFormat: 'text' | 'json';
  handshakeTimeout: number;
  connectTimeout: number;
  shutdownTimeout: number;
  maxMessageSize: number;
  maxHeaderSize: number;
}

/** The outcome of parsing: a configuration to run, or text to print before exiting 0 (`--help`). */
export type ParseResult = { kind: 'run'; config: Config } | { kind: 'exit'; output: string };

/**
 * Turns argv (without `node` and the script) into a validated configuration.
 * @throws UsageError naming the problem, for the CLI to print with the usage line and exit 2.
 */
export function parseArgs(argv: readonly string[]): ParseResult {
  // Everything after the first `--` is the program to wrap and its arguments, untouched by option parsing.
  const split = argv.indexOf('--');
  const wrapped = split >= 0 ? argv.slice(split + 1) : undefined;
  const own = split >= 0 ? argv.slice(0, split) : argv;
  const program = buildProgram();
  let helpText = '';
  program.configureOutput({ writeOut: (text) => (helpText += text), writeErr: () => undefined });
  try {
    program.parse(own as string[], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return { kind: 'exit', output: helpText };
      // Commander takes '-1' for an option; the user meant a (negative) port.
      const negative = /'(-\d+)'/.exec(err.message);
      if (err.code === 'commander.unknownOption' && negative) throw new UsageError(`invalid port '${negative[1]}' (expected 0-65535)`);
      throw new UsageError(err.message.replace(/^error: /, ''));
    }
    throw err;
  }
  const opts = program.opts<ParsedOptions>();
  const positional = [...program.args];
  const tokenPlugin = opts.targetConfig !== undefined ? 'TokenFile' : opts.tokenPlugin;
  checkCombinations(opts, wrapped, tokenPlugin);
  const listen = listenOf(opts, positional);
  const targetTls: TargetTls | undefined = opts.sslTarget && {
    insecure: opts.sslTargetInsecure ?? false,
    ca: opts.sslTargetCa && resolve(opts.sslTargetCa),
  };
  const target = targetOf(opts, positional, {
    wrapped,
    tokenPlugin,
    targetTls,
    wrapModeGiven: program.getOptionValueSource('wrapMode') === 'cli',
  });

  return {
    kind: 'run',
    config: {
      proxy: {
        listen,
        target,
        // Paths made absolute now, as Python websockify does for --target-config.
        tokens:
          tokenPlugin === undefined
            ? undefined
            : {
                plugin: isModulePath(tokenPlugin) ? resolve(tokenPlugin) : tokenPlugin,
                source: opts.targetConfig !== undefined ? resolve(opts.targetConfig) : opts.tokenSource,
                fromHost: opts.hostToken ?? false,
                targetTls,
              },
        preferIpv6: opts.preferIpv6 ?? DEFAULTS.preferIpv6,
        runOnce: opts.runOnce ?? DEFAULTS.runOnce,
        timeout: opts.timeout,
        idleTimeout: opts.idleTimeout,
        heartbeat: opts.heartbeat,
        handshakeTimeout: opts.handshakeTimeout,
        connectTimeout: opts.connectTimeout,
        shutdownTimeout: opts.shutdownTimeout,
        maxMessageSize: opts.maxMessageSize,
        maxHeaderSize: opts.maxHeaderSize,
        traffic: opts.traffic ?? DEFAULTS.traffic,
        // Absolute, as Python websockify: the files land where the user meant even if the cwd changes.
        record: opts.record === undefined ? undefined : resolve(opts.record),
        tls: {
          cert: resolve(opts.cert),
          key: opts.key && resolve(opts.key),
          keyPassword: opts.keyPassword,
          ciphers: opts.sslCiphers,
          minVersion: opts.sslVersion,
          verifyClient: opts.verifyClient ?? false,
          cafile: opts.cafile && resolve(opts.cafile),
          sslOnly: opts.sslOnly ?? false,
          explicit: opts.cert !== TLS_DEFAULTS.cert || opts.key !== undefined,
        },
        web: opts.web === undefined ? undefined : { root: resolve(opts.web), fileOnly: opts.fileOnly ?? false },
        // A module path is made absolute now: a daemon changes its directory before loading it.
        auth:
          opts.authPlugin === undefined
            ? undefined
            : {
                plugin: isModulePath(opts.authPlugin) ? resolve(opts.authPlugin) : opts.authPlugin,
                source: opts.authSource,
                web: opts.webAuth ?? false,
              },
        allowTarget: opts.allowTarget.length > 0 ? opts.allowTarget : undefined,
      },
      daemon: { detach: opts.daemon ?? false, pidFile: opts.pidFile && resolve(opts.pidFile) },
      wrap: wrapped && { command: wrapped[0]!, args: wrapped.slice(1), mode: opts.wrapMode },
      log: {
        format: opts.logFormat,
        verbose: opts.verbose ?? false,
        file: opts.logFile && resolve(opts.logFile),
        syslog: opts.syslog,
        legacySyslog: opts.legacySyslog ?? false,
      },
    },
  };
}

/** The option that names the token plugin, for messages. */
function tokenOptionOf(opts: ParsedOptions): string {
  return opts.targetConfig !== undefined ? '--target-config' : '--token-plugin';
}

/** Options that need, exclude or contradict each other. */
function checkCombinations(opts: ParsedOptions, wrapped: readonly string[] | undefined, tokenPlugin: string | undefined): void {
  if (opts.legacySyslog && !opts.syslog) throw new UsageError('--legacy-syslog needs --syslog');
  if (opts.inetd && opts.unixListen) throw new UsageError('--inetd and --unix-listen cannot be used together');
  if (opts.fileOnly && !opts.web) throw new UsageError('--file-only needs --web');
  if (opts.targetConfig !== undefined && (opts.tokenPlugin || opts.tokenSource !== undefined)) {
    throw new UsageError('--target-config FILE is the old spelling of --token-plugin TokenFile --token-source FILE: give one or the other');
  }
  if (opts.tokenSource !== undefined && !opts.tokenPlugin) throw new UsageError('--token-source needs --token-plugin');
  if (opts.hostToken && !tokenPlugin) throw new UsageError('--host-token needs --token-plugin');
  if (opts.tokenPlugin && !isModulePath(opts.tokenPlugin) && !builtInTokenPlugin(opts.tokenPlugin)) {
    throw new UsageError(
      `--token-plugin: unknown plugin '${opts.tokenPlugin}' (${TOKEN_PLUGIN_NAMES.join(', ')}, or a path such as ./my-tokens.js)`,
    );
  }
  if (tokenPlugin && wrapped)
    throw new UsageError(`-- PROGRAM cannot be used with ${tokenOptionOf(opts)}: the wrapped program is the only target`);
  if (opts.authSource !== undefined && !opts.authPlugin) throw new UsageError('--auth-source needs --auth-plugin');
  if (opts.webAuth && !opts.authPlugin) throw new UsageError('--web-auth needs --auth-plugin');
  if (opts.webAuth && !opts.web) throw new UsageError('--web-auth needs --web');
  if (opts.authPlugin && !isModulePath(opts.authPlugin) && !builtinAuthPluginName(opts.authPlugin)) {
    throw new UsageError(
      `--auth-plugin: unknown plugin '${opts.authPlugin}' (BasicHTTPAuth, ExpectOrigin, ClientCertCNAuth, or a path such as ./my-auth.js)`,
    );
  }
  // Without --verify-client no certificate is ever verified, so every connection would be refused.
  if (opts.authPlugin && builtinAuthPluginName(opts.authPlugin) === 'ClientCertCNAuth' && !opts.verifyClient)
    throw new UsageError('--auth-plugin ClientCertCNAuth needs --verify-client');
  if (opts.cafile && !opts.verifyClient) throw new UsageError('--cafile needs --verify-client');
  if ((opts.sslTargetCa || opts.sslTargetInsecure) && !opts.sslTarget)
    throw new UsageError('--ssl-target-ca and --ssl-target-insecure need --ssl-target');
  if (opts.sslTargetCa && opts.sslTargetInsecure) throw new UsageError('--ssl-target-ca and --ssl-target-insecure contradict each other');
}

/** Where to listen: `--inetd`, `--unix-listen`, or the first positional argument (taken from `positional`). */
function listenOf(opts: ParsedOptions, positional: string[]): ListenSpec {
  let listen: ListenSpec;
  if (opts.inetd) listen = { kind: 'inetd' };
  else if (opts.unixListen) listen = { kind: 'unix', path: resolve(opts.unixListen), mode: opts.unixListenMode };
  else {
    const text = positional.shift();
    if (text === undefined) throw new UsageError('missing the listen address: [source_addr:]source_port');
    listen = { kind: 'tcp', ...parseHostPort(text, 'listen address', false, true) };
  }
  // With --inetd or --unix-listen the only positional argument is the target.
  if (listen.kind !== 'tcp' && positional.length > 1) {
    throw new UsageError(
      `too many arguments: ${opts.inetd ? '--inetd' : '--unix-listen'} replaces the listen address, so '${positional[0]}' is extra`,
    );
  }
  return listen;
}

/**
 * The fixed target: the wrapped program's (a placeholder the CLI fills in), none with a token plugin,
 * `--unix-target`, or the remaining positional argument.
 */
function targetOf(
  opts: ParsedOptions,
  positional: string[],
  how: {
    wrapped: readonly string[] | undefined;
    tokenPlugin: string | undefined;
    targetTls: TargetTls | undefined;
    wrapModeGiven: boolean;
  },
): Target | undefined {
  let target: Target | undefined;
  if (how.wrapped) {
    if (how.wrapped.length === 0) throw new UsageError('missing the program to wrap after --');
    if (opts.inetd || opts.unixListen)
      throw new UsageError('-- PROGRAM needs a TCP listen port (the port the program binds), not --inetd or --unix-listen');
    if (opts.unixTarget || opts.sslTarget)
      throw new UsageError(
        `${opts.unixTarget ? '--unix-target' : '--ssl-target'} cannot be used with -- PROGRAM: the wrapped program is the target`,
      );
    if (positional.length > 0)
      throw new UsageError(`too many arguments: the wrapped program is the target, so '${positional[0]}' is extra`);
    // A placeholder: the CLI replaces it with the loopback port the program's socket is moved to.
    target = { kind: 'tcp', host: '127.0.0.1', port: 0 };
  } else if (how.wrapModeGiven) {
    throw new UsageError('--wrap-mode needs a program to wrap (-- PROGRAM)');
  } else if (how.tokenPlugin) {
    // The plugin chooses each connection's target; a fixed one as well would silently lose to it.
    const option = tokenOptionOf(opts);
    if (opts.unixTarget)
      throw new UsageError(`--unix-target cannot be used with ${option}: the token plugin chooses each connection's target`);
    if (positional.length > 0) {
      throw new UsageError(
        `a token plugin (${option}) chooses each connection's target, so the fixed target '${positional[0]}' cannot be given too`,
      );
    }
  } else if (opts.unixTarget) {
    if (opts.sslTarget) throw new UsageError('--ssl-target needs a TCP target, not --unix-target');
    target = { kind: 'unix', path: resolve(opts.unixTarget) };
  } else {
    const text = positional.shift();
    if (text === undefined)
      throw new UsageError('missing the target: target_addr:target_port (or --unix-target FILE, or --token-plugin NAME)');
    if (!text.includes(':')) throw new UsageError(`target: expected target_addr:target_port, got '${text}'`);
    target = { kind: 'tcp', ...parseHostPort(text, 'target', true), tls: how.targetTls };
  }
  if (positional.length > 0) throw new UsageError(`too many arguments: ${positional.join(' ')}`);
  return target;
}

/** The one-line usage hint printed after a usage error. */
export function usageLine(): string {
  return `usage: websockify ${USAGE.split('\n')[0]}\nTry 'websockify --help' for more information.`;
}

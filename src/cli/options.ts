import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseTargetPattern } from '../admission/policy.js';
import { allowedOrigins } from '../auth/origin.js';
import { TrustedProxies } from '../client-address/trusted-proxies.js';
import { type Config, DEFAULTS } from '../config.js';
import { UsageError } from '../errors.js';
import { LIMIT_DEFAULTS } from '../limits/options.js';
import { type ProxyOptions, resolveOptions } from '../options.js';
import { socketActivated } from '../service/socket-activation.js';
import { TLS_DEFAULTS } from '../tls/context.js';
import { DEFAULT_TOKEN_CACHE_ENTRIES } from '../tokens/cache.js';
import { TOKEN_PLUGIN_NAMES } from '../tokens/load.js';
import { addLogOptions, repeatableArgument, seconds } from './arguments.js';
import { type ExitRequest, parseCommandLine } from './parse-command-line.js';

const USAGE = `[options] [source_addr:]source_port [target_addr:target_port]
       websockify [options] --unix-listen FILE|--inetd [target_addr:target_port]
       websockify [options] [source_addr:]source_port --unix-target FILE
       websockify [options] [source_addr:]source_port --token-plugin NAME [--token-source ARG]
       websockify [options] [source_addr:]source_port -- PROGRAM [ARGS...]`;

/** A positive whole number of bytes. */
function bytes(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new InvalidArgumentError('expected a positive number of bytes.');
  return Number(text);
}

/** A positive whole number (of entries). */
function positiveCount(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new InvalidArgumentError('expected a positive whole number.');
  return Number(text);
}

/** A whole number, 0 or more (0 turns a limit off). */
function count(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('expected a whole number (0 or more).');
  return Number(text);
}

/** A number of worker processes, or `auto` (one per core); the library checks the range. */
function workerCount(text: string): number | 'auto' {
  if (text === 'auto') return text;
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('expected a number of processes, or auto.');
  return Number(text);
}

/** An octal file mode such as 0600. */
function fileMode(text: string): number {
  if (!/^0?[0-7]{3}$/.test(text)) throw new InvalidArgumentError('expected an octal mode such as 0600.');
  return parseInt(text, 8);
}

/** The command line's grammar: every option, its help text and its default. */
export function buildProgram(): Command {
  // Split where the log options stand in the help, after the listen and target options.
  const program = new Command('websockify')
    .usage(USAGE)
    .description('WebSocket-to-TCP proxy: accepts WebSocket connections and moves their bytes to a TCP or Unix socket target.')
    .argument('[listen]', '[source_addr:]source_port to listen on; IPv6 literals in brackets ([::1]:6080)')
    .argument('[target]', 'target_addr:target_port to connect each WebSocket to')
    .option('-v, --verbose', 'verbose messages (debug-level events)')
    .option('--traffic', 'print a character per message moved: } from the client, { from the target')
    .option('--record <file>', "record each session to FILE.<session number>, in the format of noVNC's playback page")
    .option('--record-max-bytes <bytes>', 'with --record: stop recording a session past this many bytes (the session goes on)', bytes)
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
    .option('--user <name>', 'once the port is bound and the TLS key read, run as this user (needs root; the wrapped program too)')
    .option('--group <name>', "with --user, run as this group (default: the user's login group)")
    .option('--unix-target <file>', 'connect each WebSocket to the Unix socket FILE');
  return (
    addLogOptions(program)
      .option(
        '--handshake-timeout <seconds>',
        'drop a connection whose handshake is not complete after SECONDS',
        seconds,
        DEFAULTS.handshakeTimeout,
      )
      .option(
        '--connect-timeout <seconds>',
        'give up connecting to the target after SECONDS (close 1011)',
        seconds,
        DEFAULTS.connectTimeout,
      )
      .option(
        '--shutdown-timeout <seconds>',
        'on SIGINT/SIGTERM, wait up to SECONDS for sessions to close',
        seconds,
        DEFAULTS.shutdownTimeout,
      )
      .option(
        '--drain-timeout <seconds>',
        'on SIGTERM, stop accepting at once and let open sessions go on for up to SECONDS before the graceful stop (0: stop at once)',
        seconds,
        DEFAULTS.drainTimeout,
      )
      .option(
        '--metrics-listen <[host:]port>',
        'serve Prometheus metrics (/metrics), /healthz and /readyz on a second listener (host default 127.0.0.1)',
      )
      .option(
        '--workers <count>',
        'serve the port with COUNT worker processes, or auto for one per core (1: this process serves)',
        workerCount,
        DEFAULTS.workers,
      )
      .option(
        '--max-message-size <bytes>',
        'largest WebSocket message accepted from a client (close 1009 beyond; 1008 beyond 16384 fragments)',
        bytes,
        DEFAULTS.maxMessageSize,
      )
      .option(
        '--max-unfinished <bytes>',
        'bytes of unfinished client messages held at once over all sessions (past it, the session holding the most gets 1009)',
        bytes,
        DEFAULTS.maxUnfinished,
      )
      .option('--max-header-size <bytes>', 'largest HTTP request head accepted (431 beyond)', bytes, DEFAULTS.maxHeaderSize)
      .option('--cert <file>', 'TLS certificate file (may also hold the key); TLS is off when the default is absent', TLS_DEFAULTS.cert)
      .option('--key <file>', 'TLS private key file, if separate from the certificate')
      .option('--key-password <password>', 'password of an encrypted TLS private key')
      .option('--key-password-file <file>', 'read the password of an encrypted TLS private key from FILE (kept out of ps)')
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
      .option('--token-header <name>', 'without ?token= in the URL, take the token from the request header NAME')
      .option('--token-cookie <name>', 'without ?token= (or --token-header), take the token from the cookie NAME')
      .option(
        '--token-cache <seconds>',
        'keep TokenRedis, BaseTokenAPI, JSONTokenApi and JWTTokenApi answers (targets, unknown and refused tokens) for SECONDS (0: off)',
        seconds,
      )
      .option(
        '--token-cache-entries <n>',
        `with --token-cache, keep at most N answers (default ${DEFAULT_TOKEN_CACHE_ENTRIES})`,
        positiveCount,
      )
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
        repeatableArgument(parseTargetPattern),
        [],
      )
      .option(
        '--trusted-proxy <cidr>',
        'take the real client from X-Forwarded-For, Forwarded and PROXY headers of peers in CIDR (repeatable; an address alone is one host)',
        repeatableArgument((range) => new TrustedProxies([range])),
        [],
      )
      .option(
        '--max-connections <n>',
        'most connections open at once, handshaking or proxying, over all workers; past it 503 (0: no limit)',
        count,
        LIMIT_DEFAULTS.maxConnections,
      )
      .option(
        '--max-connections-per-ip <n>',
        'most connections open at once from one client address (the real client behind --trusted-proxy); past it 503 (0: no limit)',
        count,
        LIMIT_DEFAULTS.maxConnectionsPerIp,
      )
      .option(
        '--max-handshake-rate <n>',
        'most WebSocket handshakes per second from one client address, in bursts of up to N; past it 429 (0: no limit)',
        count,
        LIMIT_DEFAULTS.maxHandshakeRate,
      )
      .option(
        '--max-session-duration <seconds>',
        'close a session with 1008 once it has lasted SECONDS, after what is in flight (0: no limit)',
        seconds,
        LIMIT_DEFAULTS.maxSessionDuration,
      )
      .option(
        '--ban-after <n>',
        'refuse (403) a client address for --ban-time after N failed authentications, unknown or refused tokens within it (0: no bans)',
        count,
        LIMIT_DEFAULTS.banAfter,
      )
      .addOption(
        new Option('--ban-time <seconds>', 'with --ban-after: how long a ban lasts, and the window its failures are counted in')
          .argParser(seconds)
          .default(undefined, String(LIMIT_DEFAULTS.banTime)),
      )
      .option(
        '--allow-origin <origin>',
        'accept handshakes only from pages of ORIGIN (repeatable; scheme://host[:port]), as the ExpectOrigin plugin; others 403',
        repeatableArgument((origin) =>
          allowedOrigins([origin], () => new Error(`'${origin}' is not an origin (expected scheme://host[:port], or null)`)),
        ),
        [],
      )
      .option(
        '--refusal-log-interval <seconds>',
        'log refusals from one address once per SECONDS, with a count of the others (0: every refusal)',
        seconds,
        LIMIT_DEFAULTS.refusalLogInterval,
      )
      .option('--proxy-protocol', 'connections from --trusted-proxy peers begin with a PROXY protocol header (v1 or v2)')
      .option('--target-proxy-protocol', "send each target a PROXY protocol v2 header with the client's address first")
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
      // A plain flag rather than commander's .version(), which wants the text (a file read) on every start.
      .option('-V, --version', 'print the version and exit')
      .helpOption('-h, --help', 'show this help and exit')
      .showHelpAfterError(false)
      .exitOverride()
      .configureOutput({ writeErr: () => undefined })
  );
}

/** The command line's own options besides the proxy's: how the process runs. */
interface CommandOptions {
  daemon?: true;
  pidFile?: string;
  version?: true;
}

/** The outcome of parsing: a configuration to run, or text to print before exiting 0 (`--help`, `--version`). */
export type ParseResult = { kind: 'run'; config: Config; options: ProxyOptions } | ExitRequest;

/**
 * Turns argv (without `node` and the script) into a validated configuration: commander reads the flags
 * into the library's {@link ProxyOptions}, which the library checks and resolves.
 * @throws UsageError naming the problem, for the CLI to print with the usage line and exit 2.
 */
export function parseArgs(argv: readonly string[]): ParseResult {
  // Everything after the first `--` is the program to wrap and its arguments, untouched by option parsing.
  const split = argv.indexOf('--');
  const wrapped = split >= 0 ? argv.slice(split + 1) : undefined;
  const own = split >= 0 ? argv.slice(0, split) : argv;
  const program = buildProgram();
  const exit = parseCommandLine(program, own, (err) => {
    // Commander takes '-1' for an option; the user meant a (negative) port.
    const negative = /'(-\d+)'/.exec(err.message);
    if (err.code === 'commander.unknownOption' && negative) return new UsageError(`invalid port '${negative[1]}' (expected 0-65535)`);
    return undefined;
  });
  if (exit) return exit;
  const { daemon, pidFile, version: _version, ...opts } = program.opts<ProxyOptions & CommandOptions>();
  const given = (name: string): boolean => program.getOptionValueSource(name) === 'cli';
  const positional = [...program.args];
  // With --inetd, --unix-listen or a socket from systemd (with at most one argument) the only positional
  // argument is the target.
  const activated = !opts.inetd && !opts.unixListen && positional.length <= 1 && socketActivated();
  const listen = opts.inetd || opts.unixListen || activated ? undefined : positional.shift();
  if (listen === undefined && !opts.inetd && !opts.unixListen && !activated)
    throw new UsageError('missing the listen address: [source_addr:]source_port');
  if (listen === undefined && positional.length > 1) {
    throw new UsageError(
      `too many arguments: ${opts.inetd ? '--inetd' : '--unix-listen'} replaces the listen address, so '${positional[0]}' is extra`,
    );
  }
  const target = positional.shift();
  if (positional.length > 0) throw new UsageError(`too many arguments: ${positional.join(' ')}`);
  const options: ProxyOptions = {
    ...opts,
    listen,
    target,
    program: wrapped,
    // Only what the user named: a certificate named explicitly must load, and --wrap-mode needs a program.
    cert: given('cert') ? opts.cert : undefined,
    wrapMode: given('wrapMode') ? opts.wrapMode : undefined,
  };
  const { proxy, log } = resolveOptions(options);
  return { kind: 'run', options, config: { proxy, log, daemon: { detach: daemon ?? false, pidFile: pidFile && resolve(pidFile) } } };
}

/** The one-line usage hint printed after a usage error. */
export function usageLine(): string {
  return `usage: websockify ${USAGE.split('\n')[0]}\nTry 'websockify --help' for more information.`;
}

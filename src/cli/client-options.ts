import { Command, Option } from 'commander';
import type { ClientListenOptions } from '../client/listen.js';
import { type ClientOptions, parseHeaderLine, readPemFile, resolveClientOptions } from '../client/options.js';
import { DEFAULTS } from '../config.js';
import { UsageError } from '../errors.js';
import type { LogOptions } from '../log/logger.js';
import { parseHostPort } from '../targets/address.js';
import { addLogOptions, repeatableArgument, seconds } from './arguments.js';
import { type ExitRequest, parseCommandLine } from './parse-command-line.js';

const USAGE = `[options] [listen_addr:]listen_port URL
       websockify-client [options] --unix-listen FILE URL
       websockify-client [options] --stdio URL`;

/** The command line's grammar: every option, its help text and its default. */
export function buildClientProgram(): Command {
  const program = new Command('websockify-client')
    .usage(USAGE)
    .description(
      'TCP-to-WebSocket client: accepts local TCP connections (or uses stdin/stdout) and carries each over its own WebSocket to a websockify server.',
    )
    .argument('[listen]', '[listen_addr:]listen_port to accept local connections on (default address: 127.0.0.1)')
    .argument('[url]', 'ws:// or wss:// URL of the WebSocket server, with its path and query (?token=...)')
    .option('--stdio', 'carry one session on stdin/stdout instead of listening (for ssh -o ProxyCommand)')
    .option('--unix-listen <file>', 'listen on a Unix socket FILE instead of a TCP port')
    .addOption(
      new Option('--protocol <name>', 'the only subprotocol to ask for (default: offer binary, then base64)').choices(['binary', 'base64']),
    )
    .option(
      "--header <'Name: value'>",
      'an extra request header, such as a cookie or Authorization (repeatable)',
      repeatableArgument(parseHeaderLine),
      [],
    )
    .option('--origin <origin>', 'the Origin header to send')
    .option('--cafile <file>', 'trust only the authorities in FILE for a wss:// server (default: the system trust store)')
    .option('--insecure', 'accept any wss:// server certificate (self-signed servers)')
    .option('--cert <file>', 'client certificate for wss:// servers that ask for one (may also hold the key)')
    .option('--key <file>', 'private key of --cert, if separate')
    .option('--connect-timeout <seconds>', 'give up opening the WebSocket after SECONDS (0: never)', seconds, DEFAULTS.connectTimeout)
    .option(
      '--heartbeat <seconds>',
      'ping the server every SECONDS; drop the session when the pong is not back by the next ping (0: off)',
      seconds,
      0,
    )
    .option('--run-once', 'serve a single local connection, then exit')
    .option('-v, --verbose', 'verbose messages (debug-level events)');
  return addLogOptions(program)
    .option('-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'show this help and exit')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeErr: () => undefined });
}

interface ParsedFlags {
  stdio?: true;
  unixListen?: string;
  protocol?: 'binary' | 'base64';
  header: string[];
  origin?: string;
  cafile?: string;
  insecure?: true;
  cert?: string;
  key?: string;
  connectTimeout: number;
  heartbeat: number;
  runOnce?: true;
  verbose?: true;
  logFile?: string;
  syslog?: string;
  legacySyslog?: true;
  logFormat: 'text' | 'json';
  version?: true;
}

/** What the command is to do, its options checked; certificate files are read when it starts. */
export interface ClientCommand {
  url: string;
  /** Where to listen, or `stdio` for one session on stdin/stdout. */
  mode: { kind: 'stdio' } | { kind: 'listen'; listen: ClientListenOptions['listen'] };
  runOnce: boolean;
  log: LogOptions;
  /** The session options, TLS files still as paths (see {@link loadClientFiles}). */
  options: ClientOptions;
  files: { cafile?: string | undefined; cert?: string | undefined; key?: string | undefined };
}

/** The outcome of parsing: a command to run, or text to print before exiting 0 (`--help`, `--version`). */
export type ClientParseResult = { kind: 'run'; command: ClientCommand } | ExitRequest;

/**
 * Turns argv (without `node` and the script) into a checked command.
 * @throws UsageError naming the problem, for the CLI to print with the usage line and exit 2.
 */
export function parseClientArgs(argv: readonly string[]): ClientParseResult {
  const program = buildClientProgram();
  const exit = parseCommandLine(program, argv);
  if (exit) return exit;
  const flags = program.opts<ParsedFlags>();
  const positional = [...program.args];
  if (flags.stdio && flags.unixListen) throw new UsageError('--stdio and --unix-listen cannot be used together');
  if (flags.stdio && flags.runOnce) throw new UsageError('--run-once has no meaning with --stdio (one session already)');
  const listenText = flags.stdio || flags.unixListen ? undefined : positional.shift();
  const url = positional.shift();
  if (url === undefined) {
    throw new UsageError(listenText === undefined ? 'missing the URL (ws://... or wss://...)' : 'missing the listen port or the URL');
  }
  if (positional.length > 0) throw new UsageError(`too many arguments: ${positional.join(' ')}`);
  let mode: ClientCommand['mode'];
  if (flags.stdio) mode = { kind: 'stdio' };
  else if (flags.unixListen) mode = { kind: 'listen', listen: { kind: 'unix', path: flags.unixListen, mode: DEFAULTS.unixListenMode } };
  else {
    const { host, port } = parseHostPort(listenText!, 'listen address', false, true);
    // A client for local programs: loopback unless an address is named.
    mode = { kind: 'listen', listen: { kind: 'tcp', host: host || '127.0.0.1', port } };
  }
  const options: ClientOptions = {
    protocol: flags.protocol,
    headers: flags.header,
    origin: flags.origin,
    insecure: flags.insecure,
    connectTimeout: flags.connectTimeout,
    heartbeat: flags.heartbeat,
  };
  // Checked now with placeholders for the files, so that a usage error comes before any file is read.
  resolveClientOptions(url, {
    ...options,
    ca: flags.cafile && 'ca',
    cert: flags.cert && 'cert',
    key: flags.key && 'key',
  });
  return {
    kind: 'run',
    command: {
      url,
      mode,
      runOnce: flags.runOnce ?? false,
      log: {
        format: flags.logFormat,
        verbose: flags.verbose ?? false,
        file: flags.logFile,
        syslog: flags.syslog,
        legacySyslog: flags.legacySyslog ?? false,
      },
      options,
      files: { cafile: flags.cafile, cert: flags.cert, key: flags.key },
    },
  };
}

/**
 * The session options with the TLS files read.
 * @throws StartupError naming a file that cannot be read.
 */
export function loadClientFiles(command: ClientCommand): ClientOptions {
  const { cafile, cert, key } = command.files;
  return {
    ...command.options,
    ...(cafile && { ca: readPemFile(cafile, 'CA file') }),
    ...(cert && { cert: readPemFile(cert, 'certificate file') }),
    ...(key && { key: readPemFile(key, 'key file') }),
  };
}

/** The one-line usage hint printed after a usage error. */
export function clientUsageLine(): string {
  return `usage: websockify-client ${USAGE.split('\n')[0]}\nTry 'websockify-client --help' for more information.`;
}

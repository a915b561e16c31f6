import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { buildProgram } from '../../src/cli/options.js';
import { runCli } from '../helpers/proxy.js';

// Each bad command line must fail before anything listens: exit 2, a message naming the problem, and the
// usage hint on stderr, nothing on stdout. `problem` is what the message has to mention.
const BAD: Array<{ args: string[]; problem: RegExp }> = [
  { args: ['--bogus', '6080', 'localhost:5900'], problem: /unknown option '--bogus'/ },
  { args: ['99999', 'localhost:5900'], problem: /invalid port '99999'/ },
  { args: ['abc', 'localhost:5900'], problem: /invalid port 'abc'/ },
  { args: ['-1', 'localhost:5900'], problem: /invalid port '-1'/ },
  { args: ['6080', 'localhost:70000'], problem: /target: invalid port '70000'/ },
  { args: [], problem: /missing the listen address/ },
  { args: ['6080'], problem: /missing the target/ },
  { args: ['6080', 'localhost'], problem: /target: expected target_addr:target_port, got 'localhost'/ },
  { args: ['6080', '[::1'], problem: /target: malformed address '\[::1'/ },
  { args: ['6080', 'host:'], problem: /target: invalid port ''/ },
  { args: ['6080', ':5900'], problem: /target: expected host:port/ },
  { args: ['6080', 'localhost:5900', 'extra'], problem: /too many arguments/ },
  { args: ['6080', 'localhost:5900', '--unix-target', '/tmp/x.sock'], problem: /too many arguments: localhost:5900/ },
  {
    args: ['--unix-listen', '/tmp/x.sock', '6080', 'localhost:5900'],
    problem: /too many arguments: --unix-listen replaces the listen address/,
  },
  { args: ['--timeout', 'x', '6080', 'localhost:5900'], problem: /--timeout <seconds>' argument 'x' is invalid/ },
  { args: ['--timeout', '0x10', '6080', 'localhost:5900'], problem: /argument '0x10' is invalid/ },
  { args: ['--heartbeat', '-5', '6080', 'localhost:5900'], problem: /--heartbeat <seconds>' argument '-5' is invalid/ },
  { args: ['--max-message-size', '0', '6080', 'localhost:5900'], problem: /--max-message-size <bytes>' argument '0' is invalid/ },
  {
    args: ['--max-unfinished', '1000', '6080', 'localhost:5900'],
    problem: /--max-unfinished: 1000 is below --max-message-size \(16777216\)/,
  },
  {
    args: ['--unix-listen-mode', '999', '--unix-listen', '/tmp/x.sock', 'localhost:5900'],
    problem: /--unix-listen-mode <mode>' argument '999' is invalid/,
  },
  { args: ['--log-format', 'xml', '6080', 'localhost:5900'], problem: /argument 'xml' is invalid.*text, json/ },
  { args: ['--legacy-syslog', '6080', 'localhost:5900'], problem: /--legacy-syslog needs --syslog/ },
  {
    args: ['--syslog', '127.0.0.1:99999', '6080', 'localhost:5900'],
    problem: /--syslog <server>' argument '127\.0\.0\.1:99999' is invalid/,
  },
  { args: ['--inetd', '--unix-listen', '/tmp/x.sock', 'localhost:5900'], problem: /--inetd and --unix-listen cannot be used together/ },
  {
    args: ['--trusted-proxy', '10.0.0.0/33', '6080', 'localhost:5900'],
    problem: /--trusted-proxy <cidr>' argument '10\.0\.0\.0\/33' is invalid\. invalid prefix length/,
  },
  { args: ['--trusted-proxy', 'lb.local', '6080', 'localhost:5900'], problem: /'lb\.local' is not an IP address or CIDR range/ },
  { args: ['--proxy-protocol', '6080', 'localhost:5900'], problem: /--proxy-protocol needs --trusted-proxy/ },
  {
    args: ['--proxy-protocol', '--trusted-proxy', '127.0.0.1', '--unix-listen', '/tmp/x.sock', 'localhost:5900'],
    problem: /--proxy-protocol needs a TCP listener/,
  },
];

for (const { args, problem } of BAD) {
  test(`usage error, exit 2: websockify ${args.join(' ')}`, async () => {
    const result = await runCli(args);
    assert.equal(result.code, 2, `stderr: ${result.stderr}`);
    assert.match(result.stderr, problem);
    assert.match(result.stderr, /^websockify: error: /);
    assert.match(result.stderr, /usage: websockify \[options\]/);
    assert.match(result.stderr, /Try 'websockify --help'/);
    assert.equal(result.stdout, '');
  });
}

test('--help: exit 0, usage on stdout listing every option', async () => {
  const result = await runCli(['--help']);
  assert.equal(result.code, 0);
  assert.equal(result.stderr, '');
  assert.match(result.stdout, /^Usage: websockify \[options\] \[source_addr:\]source_port \[target_addr:target_port\]/);
  const options = [
    '-v, --verbose',
    '--traffic',
    '--run-once',
    '--timeout <seconds>',
    '--idle-timeout <seconds>',
    '--heartbeat <seconds>',
    '-6, --prefer-ipv6',
    '--unix-listen <file>',
    '--unix-listen-mode <mode>',
    '--inetd',
    '--unix-target <file>',
    '--log-file <file>',
    '--syslog <server>',
    '--legacy-syslog',
    '--log-format <format>',
    '--handshake-timeout <seconds>',
    '--connect-timeout <seconds>',
    '--shutdown-timeout <seconds>',
    '--max-message-size <bytes>',
    '--max-unfinished <bytes>',
    '--max-header-size <bytes>',
    '-h, --help',
  ];
  for (const option of options) assert.ok(result.stdout.includes(option), `--help does not list ${option}`);
  // ...and any option added later is listed too.
  for (const option of buildProgram().options) assert.ok(result.stdout.includes(option.flags), `--help does not list ${option.flags}`);
  // The mode's default is shown the way it is written on the command line, in octal.
  assert.match(result.stdout, /default: 0600/);
});

test('-h is --help', async () => {
  const result = await runCli(['-h']);
  assert.equal(result.code, 0);
  assert.match(result.stdout, /--unix-listen-mode/);
});

test('--version and -V print the package version and exit 0', async () => {
  const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const result = await runCli([flag]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `websockify-ts ${version}\n`);
    assert.equal(result.stderr, '');
  }
});

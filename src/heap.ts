// Imported first by the entry points (the CLI, a cluster worker), for its side effect on the V8 heap of the proxy process.
import v8 from 'node:v8';

/*
 * Keeps V8's young generation at its initial size (1 MiB per semi-space) instead of letting it grow to
 * 16 MiB per semi-space, as it does while thousands of sessions open at once. Measured with the bench
 * (docs/PERFORMANCE.md): the grown young generation was a third of the resident memory of an idle
 * session (11.3 KiB per session, 7.9 with this), and the small one is also faster, since it stays in
 * the CPU's caches (handshake CPU 0.65 -> 0.59 ms, bulk and small messages unchanged). The proxy's own
 * per-session objects are few and long-lived, and its per-message garbage dies young, so scavenges stay
 * cheap. `--max-semi-space-size` would say the same but only on node's command line; this growth
 * factor is read each time V8 considers growing, so setting it at start-up takes effect.
 */
v8.setFlagsFromString('--semi-space-growth-factor=1');

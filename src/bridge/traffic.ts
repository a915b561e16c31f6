import type { BridgeHook } from './bridge.js';

/**
 * `--traffic`: one character on stdout per message moved, with Python websockify's legend:
 * `}` a message from the client, `{` data from the target.
 */
export const trafficHook: BridgeHook = {
  fromClient: () => process.stdout.write('}'),
  fromTarget: () => process.stdout.write('{'),
};

import type { Logger } from '../log/logger.js';
import type { FirstBytesRoute } from './dispatch.js';

/** What a Flash player sends first to ask whether it may connect. */
const FLASH_POLICY_REQUEST = Buffer.from('<policy-file-request/>', 'latin1');

/** The answer: any origin may connect to any port, NUL-terminated as the policy protocol requires. */
const FLASH_POLICY_RESPONSE = Buffer.from(
  '<cross-domain-policy><allow-access-from domain="*" to-ports="*" /></cross-domain-policy>\0',
  'latin1',
);

/**
 * Whether a connection's first bytes are the policy request: undecided while they are still a prefix of
 * it, so a request that arrives a byte at a time is recognised.
 */
function isFlashPolicyRequest(head: Buffer): boolean | undefined {
  const compared = Math.min(head.length, FLASH_POLICY_REQUEST.length);
  if (!head.subarray(0, compared).equals(FLASH_POLICY_REQUEST.subarray(0, compared))) return false;
  return compared === FLASH_POLICY_REQUEST.length ? true : undefined;
}

/**
 * Creates the route that answers Flash's socket policy request (legacy web-socket-js clients ask on the
 * proxy's own port) and then closes the connection.
 */
export function createFlashPolicyRoute(logger: Logger): FirstBytesRoute {
  return {
    name: 'flash-policy',
    match: isFlashPolicyRequest,
    handle(socket) {
      logger.info({ event: 'flash-policy' }, 'answered a Flash socket policy request');
      // Whatever follows (the request's NUL) is read and dropped: unread bytes would turn the close into a reset.
      socket.on('data', () => undefined);
      socket.end(FLASH_POLICY_RESPONSE);
    },
  };
}

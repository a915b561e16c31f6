import type { TargetSource } from '../admission/target-source.js';
import type { Target } from '../targets/target.js';
import type { LoopbackHost } from '../wrap/loopback.js';

/**
 * In a worker: the primary's wrapped program, the target of every session. The primary runs the
 * program once for all workers and says where it listens (127.0.0.1 or ::1, learnt once it binds).
 */
export class ProgramTarget implements TargetSource {
  constructor(
    /** The loopback address the program listens on, as the primary last said. */
    public host: LoopbackHost,
    private readonly port: number,
    private readonly description: string,
  ) {}

  targetFor(): Target {
    return { kind: 'tcp', host: this.host, port: this.port };
  }

  describe(): string {
    return this.description;
  }
}

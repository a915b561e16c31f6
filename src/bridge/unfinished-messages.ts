/** A session whose client may hold part of a message (a {@link Bridge}). */
export interface UnfinishedHolder {
  /** Bytes of its client's unfinished message, as last noted. */
  unfinished: number;
  /** Ends the session: the proxy cannot hold its message. */
  dropUnfinished(limit: number): void;
}

/**
 * The bytes of unfinished client messages held over all sessions, and their bound. ws assembles each
 * message before handing it on (up to `--max-message-size`), so without a bound over all sessions, many
 * clients that each send most of a maximal message and then stall hold that much each, for as long as
 * they like. Past the bound the session holding the most is closed with 1009, which gives its memory
 * back: an honest client's smaller message goes on, a hoarder's goes.
 */
export class UnfinishedMessages {
  private total = 0;
  /** Sessions holding anything now. */
  private readonly holders = new Set<UnfinishedHolder>();

  /** @param limit bytes of unfinished messages allowed at once over all sessions. */
  constructor(readonly limit: number) {}

  /** Bytes held now, over all sessions. */
  get held(): number {
    return this.total;
  }

  /** Notes that `holder` now holds `bytes` (0 once its message is whole, or it has gone); enforces the bound. */
  update(holder: UnfinishedHolder, bytes: number): void {
    const before = holder.unfinished;
    if (bytes === before) return;
    holder.unfinished = bytes;
    this.total += bytes - before;
    if (bytes === 0) this.holders.delete(holder);
    else this.holders.add(holder);
    while (this.total > this.limit) {
      // Of equals, the one that has just grown goes: it has the least of its message so far.
      let largest = this.holders.has(holder) ? holder : undefined;
      for (const candidate of this.holders) if (!largest || candidate.unfinished > largest.unfinished) largest = candidate;
      if (!largest) return;
      this.total -= largest.unfinished;
      largest.unfinished = 0;
      this.holders.delete(largest);
      largest.dropUnfinished(this.limit);
    }
  }
}

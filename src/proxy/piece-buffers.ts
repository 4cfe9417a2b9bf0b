// Piece-sized buffers reused across the pieces of one download. A fresh
// 1 MiB buffer per piece costs a page fault per 4 KiB on first touch and
// drives V8's external-memory collections: together about a third of the
// proxy's CPU for a 200 MiB download. A buffer goes back to the pool only
// when nothing holds it any more: neither the window of recent pieces nor
// any socket write it is queued on.

export class PiecePool {
  private free: Buffer[] = [];

  constructor(
    private readonly size: number,
    private readonly keep: number,
  ) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  give(b: Buffer): void {
    if (this.free.length < this.keep) this.free.push(b);
  }
}

/** A verified piece in memory; its buffer is never written while anyone holds it. */
export class HeldPiece {
  /** The window of recent pieces holds it until `drop`. */
  private refs = 1;

  constructor(
    private readonly buf: Buffer,
    readonly length: number,
    /** Where the buffer goes once nobody holds it; null: to the garbage collector (a buffer someone else may still read). */
    private readonly pool: PiecePool | null,
  ) {}

  /** The piece's bytes from `offset`, and a release to call once, when the write using them is done. */
  lease(offset: number): { data: Buffer; release: () => void } {
    this.refs++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.unref();
    };
    return { data: this.buf.subarray(offset, this.length), release };
  }

  /** Out of the window. */
  drop(): void {
    this.unref();
  }

  private unref(): void {
    if (--this.refs === 0) this.pool?.give(this.buf);
  }
}

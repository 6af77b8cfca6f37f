/**
 * Group commit for store calls. A call runs at once when fewer than `concurrency` batches are
 * in flight; otherwise it waits and leaves with the next batch, together with every call that
 * arrived meanwhile (up to `maxBatch`). One call alone pays no added latency; a burst of a
 * thousand first requests costs a few transactions instead of a thousand.
 */
export type BatchResult<O> = O | Error;

export class Batcher<I, O> {
  private queue: Array<{ input: I; resolve: (o: O) => void; reject: (e: unknown) => void }> = [];
  private running = 0;

  /**
   * `run` receives the inputs of one batch and returns one result per input, in order; an
   * Error result rejects only that call, a rejection of `run` rejects the whole batch.
   */
  constructor(
    private readonly run: (inputs: I[]) => Promise<BatchResult<O>[]>,
    private readonly maxBatch: number,
    private readonly concurrency: number,
  ) {}

  push(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.kick();
    });
  }

  /** Calls waiting for a batch (not counting those in flight). */
  get waiting(): number {
    return this.queue.length;
  }

  private kick(): void {
    while (this.running < this.concurrency && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.running++;
      let results: Promise<BatchResult<O>[]>;
      try {
        results = this.run(batch.map((b) => b.input));
      } catch (err) {
        results = Promise.reject(err);
      }
      results
        .then(
          (out) =>
            batch.forEach((b, i) => {
              const r = out[i];
              if (r instanceof Error) b.reject(r);
              else b.resolve(r as O);
            }),
          (err: unknown) => batch.forEach((b) => b.reject(err)),
        )
        .finally(() => {
          this.running--;
          this.kick();
        });
    }
  }
}

/**
 * A bounded single-consumer queue that is also an async iterator: producers `push`, one
 * `for await` loop consumes. Used for status changes, watch items and election changes.
 */
export class AsyncQueue<T> implements AsyncIterableIterator<T> {
  private readonly items: T[] = [];
  private readonly waiters: Array<{ resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void }> =
    [];
  private ended = false;
  private failure: { error: unknown } | undefined;

  /**
   * @param limit most items held for a slow consumer; `push` refuses more.
   * @param onReturn called once when the consumer stops early (`break` in `for await`).
   */
  constructor(
    private readonly limit: number,
    private readonly onReturn?: () => void,
  ) {}

  /** Number of items waiting for the consumer. */
  get size(): number {
    return this.items.length;
  }

  get done(): boolean {
    return this.ended;
  }

  /** Hands an item to the consumer. False (and nothing queued) when the buffer is full or the queue ended. */
  push(item: T): boolean {
    if (this.ended) return false;
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter.resolve({ value: item, done: false });
      return true;
    }
    if (this.items.length >= this.limit) return false;
    this.items.push(item);
    return true;
  }

  /** Drops everything not yet consumed. */
  clear(): void {
    this.items.length = 0;
  }

  /** Ends the iteration after the buffered items; with an error, the consumer's next read throws it. */
  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    if (error !== undefined) this.failure = { error };
    for (const w of this.waiters.splice(0)) {
      if (this.failure) w.reject(this.failure.error);
      else w.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) return Promise.resolve({ value: this.items.shift() as T, done: false });
    if (this.ended) {
      if (this.failure) {
        const { error } = this.failure;
        this.failure = undefined;
        return Promise.reject(error);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    const wasEnded = this.ended;
    this.items.length = 0;
    this.failure = undefined;
    this.end();
    if (!wasEnded) this.onReturn?.();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}

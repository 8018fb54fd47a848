import { encodeEventsFrame, encodeFrame } from '../../shared/codec.js';
import type { LeaseEvent } from '../../shared/frames.js';

/**
 * A lease event encoded once for every connection that receives it. When a connection's queue
 * holds just this event (the common case for fan-out), all of them share one prebuilt frame.
 */
export class EncodedEvent {
  readonly revision: number;
  readonly bytes: Uint8Array;
  private single: Uint8Array | undefined;

  constructor(readonly event: LeaseEvent) {
    this.revision = event.revision;
    this.bytes = encodeFrame(event);
  }

  get singleFrame(): Uint8Array {
    if (!this.single) this.single = encodeEventsFrame([this.bytes]);
    return this.single;
  }
}

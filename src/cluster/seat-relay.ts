/**
 * @module seat-relay
 * The live seat feed on any node: each node publishes the events of the partitions it serves on a
 * PostgreSQL channel (NOTIFY, delivered in commit order, so one publisher's events arrive in order), and
 * hands the events of other nodes' partitions to its own listeners (the seat-map mirrors behind every
 * feed), exactly as if its own shard had made them. Versions rise by one per event, so whatever is
 * missed shows up as a gap, and a gap is a resync for the subscriber, never a silently lost delta:
 * a change of owner, a message too long to carry, and a lost listening connection all end up there.
 *
 * Why NOTIFY and not Redis or a proxied feed, measured (`npm run bench -- relay`, README): a proxied feed
 * costs per subscriber (at 50 the receiving node spends ~9–20× what one costs); Redis is cheaper than
 * NOTIFY (~4× the throughput, a third of the server CPU), but NOTIFY's 75k+ events/s is ten times what
 * the cluster's commands make, and Redis would become a service the cluster cannot run without. Its
 * price, ~5–11 ms of PostgreSQL CPU per 1,000 events, is what to revisit if the database becomes the
 * limit. A node alone publishes nothing.
 */
import type { ShardRouter, ShowEvent } from '../actors/shard-router.js';
import type { Logger } from '../logger.js';
import { notify, type Store, type Subscription } from '../persistence/store.js';

export const SEATS_CHANNEL = 'boxoffice_seats';
/** PostgreSQL's payload limit is 8000 bytes; messages stay below it with room to spare. */
const MAX_PAYLOAD_BYTES = 7500;

interface RelayMessage {
  /** The publishing node. */
  n: string;
  e: ShowEvent[];
}

export interface SeatRelayOptions {
  store: Store;
  router: ShardRouter;
  node: string;
  /** Whether other nodes are alive to hear it (a node alone publishes nothing). */
  hasPeers: () => boolean;
  /** Called when events may have been missed (the listening connection came back). */
  onResync: () => void;
  logger?: Logger;
}

export class SeatRelay {
  #queue: ShowEvent[] = [];
  #isFlushScheduled = false;
  #subscription?: Subscription;
  #published = 0;
  /** Messages go one after another: two in flight on two connections could commit out of order. */
  #sending: Promise<void> = Promise.resolve();

  private constructor(private readonly options: SeatRelayOptions) {}

  static async start(options: SeatRelayOptions): Promise<SeatRelay> {
    const relay = new SeatRelay(options);
    const { router, node, store } = options;
    relay.#subscription = await store.subscribe(SEATS_CHANNEL, {
      onMessage: (payload) => {
        let message: RelayMessage;
        try {
          message = JSON.parse(payload) as RelayMessage;
        } catch {
          return;
        }
        if (message.n !== node && Array.isArray(message.e)) router.emitEvents(message.e);
      },
      onResync: options.onResync,
    });
    // Only this node's own shard's events: those relayed in are not relayed again.
    router.onLocalEvents((events) => relay.#publish(events));
    return relay;
  }

  /** Messages sent so far (tests, diagnosis). */
  get published(): number {
    return this.#published;
  }

  #publish(events: ShowEvent[]): void {
    if (!this.options.hasPeers()) return;
    for (const event of events) this.#queue.push(event);
    if (this.#isFlushScheduled) return;
    this.#isFlushScheduled = true;
    // One message per turn for every batch that replied in it.
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#isFlushScheduled = false;
    const events = this.#queue;
    this.#queue = [];
    for (const payload of packRelayMessages(`{"n":${JSON.stringify(this.options.node)},"e":[`, events)) {
      this.#published++;
      this.#sending = this.#sending.then(() =>
        notify(this.options.store, SEATS_CHANNEL, payload).catch((err) =>
          // Followers see the next event's version as a gap and resync: nothing is silently lost.
          this.options.logger?.warn({ err }, 'seat relay could not publish'),
        ),
      );
    }
  }

  async close(): Promise<void> {
    await this.#sending;
    await this.#subscription?.close();
  }
}

/**
 * `events` as relay messages of at most MAX_PAYLOAD_BYTES each: `prefix` (an object opened up to its
 * event array, `{"n":…,"e":[`), then the events, as many per message as fit. An event too long for
 * any message goes as a gap marker (no changes, `isGap`): its followers resync.
 */
export function packRelayMessages(prefix: string, events: readonly ShowEvent[]): string[] {
  const messages: string[] = [];
  let parts: string[] = [];
  let size = prefix.length + 2;
  const close = () => {
    if (parts.length === 0) return;
    messages.push(`${prefix}${parts.join(',')}]}`);
    parts = [];
    size = prefix.length + 2;
  };
  for (const event of events) {
    let json = JSON.stringify(event);
    if (json.length > MAX_PAYLOAD_BYTES - prefix.length - 2)
      json = JSON.stringify({ showId: event.showId, version: event.version, changes: [], isGap: true });
    if (size + json.length + 1 > MAX_PAYLOAD_BYTES) close();
    parts.push(json);
    size += json.length + 1;
  }
  close();
  return messages;
}

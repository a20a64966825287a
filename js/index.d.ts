// TypeScript declarations of @realtime-go/client, the browser client of
// github.com/realtime-go/realtime. The behaviour is documented in the
// header comment of realtime.js.

/// <reference lib="dom" />

/** The transports a RealtimeSocket may use. */
export type Transport = 'auto' | 'websocket' | 'eventsource';

/** The options of a RealtimeSocket; times are in milliseconds. */
export interface RealtimeSocketOptions {
  /** 'auto' (WebSocket, then EventSource; the default), 'websocket' or 'eventsource'. */
  transport?: Transport;
  /** How long a transport may take to open before the next is tried: 5000. */
  connectTimeout?: number;
  /**
   * The reconnect backoff: the wait is random in [0, cap), cap =
   * min(maxDelay, minDelay * 2^failures), failures counting the attempts
   * since the last connection that stayed open 10 s (3 more after a close
   * with 1012 or 1013). 500.
   */
  minDelay?: number;
  /** The longest reconnect wait: 30000. */
  maxDelay?: number;
  /** The id to resume from, across page loads: ''. */
  lastEventId?: string;
  /** How many messages send() queues while the socket is CONNECTING: 1000. */
  maxQueue?: number;
  /** How many UTF-8 bytes send() queues while the socket is CONNECTING: 1048576. */
  maxQueueBytes?: number;
}

/** readyState: connecting or reconnecting, through every transport tried. */
export type CONNECTING = 0;
/** readyState: a connection is open. */
export type OPEN = 1;
/** readyState: from close() to the close event. */
export type CLOSING = 2;
/** readyState: closed for good. */
export type CLOSED = 3;
export type ReadyState = CONNECTING | OPEN | CLOSING | CLOSED;

/** The `open` event, fired on every (re)connection. */
export interface RealtimeOpenEvent extends Event {
  readonly type: 'open';
  readonly transport: 'websocket' | 'eventsource';
  /** 'realtime.v2', 'realtime.v1', or '' for a server without the subprotocol. */
  readonly protocol: string;
  /** The server resumed from the last event id: no message was missed. */
  readonly resumed: boolean;
  /** The server could not resume from the last event id: messages may be missing. */
  readonly missed: boolean;
}

/** A message: data, lastEventId, and the channel ('' for one sent to this socket only). */
export interface RealtimeMessageEvent extends MessageEvent<string> {
  readonly channel: string;
}

/** Who is in a channel. */
export interface PresenceEntry {
  socket: string;
  user: string;
  info: string;
}

export interface ReconnectingDetail {
  /** The close code of the connection lost; 1006 when it broke or an attempt failed. */
  code: number;
  reason: string;
  /** The wait before the next attempt, in ms. */
  delay: number;
}

export interface SubscribedDetail {
  channel: string;
  /** 'failed' means messages may be missing: catch up by other means. */
  status: 'fresh' | 'resumed' | 'failed';
}

export interface UnsubscribedDetail {
  channel: string;
  /** 'left', or the server's refusal ('realtime.v1' against a server without channels). */
  reason: string;
}

export interface LostDetail {
  channel: string;
}

export interface PresenceDetail {
  channel: string;
  entry: PresenceEntry;
}

export interface ServerErrorDetail {
  text: string;
}

/** The events of a Subscription, and of the socket for every channel. */
export interface SubscriptionEventMap {
  message: RealtimeMessageEvent;
  subscribed: CustomEvent<SubscribedDetail>;
  unsubscribed: CustomEvent<UnsubscribedDetail>;
  lost: CustomEvent<LostDetail>;
  join: CustomEvent<PresenceDetail>;
  leave: CustomEvent<PresenceDetail>;
}

/** The events of a RealtimeSocket. */
export interface RealtimeSocketEventMap extends SubscriptionEventMap {
  open: RealtimeOpenEvent;
  /** A connection broke, or the server refused a message. */
  error: Event;
  /** The connection was lost and the socket tries again after detail.delay ms. */
  reconnecting: CustomEvent<ReconnectingDetail>;
  /** Fired once, when the socket is closed for good. */
  close: CloseEvent;
  /** The server could not parse a request. */
  servererror: CustomEvent<ServerErrorDetail>;
}

type Handler<T, E> = ((this: T, ev: E) => any) | null;

/** One channel of a RealtimeSocket; made by RealtimeSocket.subscribe. */
export declare class Subscription extends EventTarget {
  private constructor();
  readonly socket: RealtimeSocket;
  readonly channel: string;
  /** False once unsubscribed or refused. */
  readonly active: boolean;
  onmessage: Handler<Subscription, RealtimeMessageEvent>;
  onsubscribed: Handler<Subscription, CustomEvent<SubscribedDetail>>;
  onunsubscribed: Handler<Subscription, CustomEvent<UnsubscribedDetail>>;
  onlost: Handler<Subscription, CustomEvent<LostDetail>>;
  onjoin: Handler<Subscription, CustomEvent<PresenceDetail>>;
  onleave: Handler<Subscription, CustomEvent<PresenceDetail>>;
  /** Asks the server to publish text in the channel; throws unless the socket is open. */
  publish(text: string): void;
  /** Who is in the channel, on every node. */
  presence(): Promise<PresenceEntry[]>;
  /** Leaves the channel; the server confirms with `unsubscribed`. */
  unsubscribe(): void;
  addEventListener<K extends keyof SubscriptionEventMap>(type: K, listener: (this: Subscription, ev: SubscriptionEventMap[K]) => any, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof SubscriptionEventMap>(type: K, listener: (this: Subscription, ev: SubscriptionEventMap[K]) => any, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | EventListenerOptions): void;
}

/**
 * A socket shaped like the browser's WebSocket that falls back to
 * EventSource plus POSTs, reconnects with backoff, resumes from the last
 * event id, queues what is sent while it reconnects, and speaks the
 * channels of the wire protocol realtime.v2.
 */
export declare class RealtimeSocket extends EventTarget {
  constructor(url: string | URL, options?: RealtimeSocketOptions);
  static readonly CONNECTING: CONNECTING;
  static readonly OPEN: OPEN;
  static readonly CLOSING: CLOSING;
  static readonly CLOSED: CLOSED;
  static readonly Subscription: typeof Subscription;
  readonly CONNECTING: CONNECTING;
  readonly OPEN: OPEN;
  readonly CLOSING: CLOSING;
  readonly CLOSED: CLOSED;
  /** The absolute URL of the server's Handler. */
  readonly url: string;
  /** The options in force, defaults included. */
  readonly options: Readonly<Required<RealtimeSocketOptions>>;
  readonly readyState: ReadyState;
  /** The transport of the open connection, '' while none is open. */
  readonly transport: '' | 'websocket' | 'eventsource';
  /** The protocol of the open connection: 'realtime.v2', 'realtime.v1' or ''. */
  readonly protocol: string;
  /** The id to resume from; keep it to resume across page loads. */
  readonly lastEventId: string;
  /**
   * The UTF-8 bytes of the messages queued or not yet acknowledged, plus
   * the WebSocket's own bufferedAmount.
   */
  readonly bufferedAmount: number;
  onopen: Handler<RealtimeSocket, RealtimeOpenEvent>;
  onmessage: Handler<RealtimeSocket, RealtimeMessageEvent>;
  onerror: Handler<RealtimeSocket, Event>;
  onclose: Handler<RealtimeSocket, CloseEvent>;
  onreconnecting: Handler<RealtimeSocket, CustomEvent<ReconnectingDetail>>;
  /**
   * Sends text, or queues it while the socket is CONNECTING. Throws a
   * TypeError for binary data, a DOMException 'QuotaExceededError' when
   * the queue is full and 'InvalidStateError' once CLOSING or CLOSED.
   */
  send(data: string): void;
  /** The Subscription to channel, asking the server for it if it is new. */
  subscribe(channel: string): Subscription;
  /**
   * Closes the socket for good: code 1000 (the default) or 3000-4999,
   * else a DOMException 'InvalidAccessError'; a reason over 123 UTF-8
   * bytes throws 'SyntaxError'. The close event fires later, once.
   */
  close(code?: number, reason?: string): void;
  addEventListener<K extends keyof RealtimeSocketEventMap>(type: K, listener: (this: RealtimeSocket, ev: RealtimeSocketEventMap[K]) => any, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof RealtimeSocketEventMap>(type: K, listener: (this: RealtimeSocket, ev: RealtimeSocketEventMap[K]) => any, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | EventListenerOptions): void;
}

export default RealtimeSocket;

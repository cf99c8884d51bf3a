// The console's one WebSocket to /ws/agent: connects, pings, and on loss
// shows the banner and reconnects with exponential backoff (1 s doubling to
// 30 s, with jitter). Resuming (sign_in with the last seq per conversation)
// is the caller's job in onOpen/hello; this module only moves frames.

const PING_MS = 25000;
const MAX_DELAY_MS = 30000;

export class Connection {
  /**
   * handlers: { frame(msg), down(reason), sessionEnded(), replaced() }
   * down is called with "reconnecting" whenever the socket is lost.
   */
  constructor(handlers) {
    this.handlers = handlers;
    this.ws = null;
    this.retries = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.stopped = true;
  }

  get open() {
    return Boolean(this.ws && this.ws.readyState === WebSocket.OPEN);
  }

  send(frame) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    const old = this.ws;
    this.ws = null;
    old?.close(1000);
  }

  /** The server accepted us (signed_in): the next loss starts from a short delay again. */
  healthy() {
    this.retries = 0;
  }

  connect() {
    clearTimeout(this.retryTimer);
    const url = new URL("/ws/agent", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(url);
    this.ws = socket;
    socket.addEventListener("open", () => {
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.send({ type: "ping" }), PING_MS);
    });
    socket.addEventListener("message", (e) => {
      if (this.ws !== socket) return;
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch (err) {
        console.error("bad frame", err);
        return;
      }
      this.handlers.frame(msg);
    });
    socket.addEventListener("close", (e) => {
      if (this.ws !== socket) return; // closed on purpose
      this.ws = null;
      clearInterval(this.pingTimer);
      if (this.stopped) return;
      if (e.code === 4001) {
        this.stopped = true;
        this.handlers.replaced();
        return;
      }
      this.reconnectLater();
    });
  }

  async reconnectLater() {
    this.handlers.down("reconnecting");
    // A refused upgrade looks like any other close: ask whether we are still logged in.
    const me = await fetch("/api/me", { credentials: "same-origin" }).catch(() => null);
    if (this.stopped || this.ws) return;
    if (me && me.status === 401) {
      this.stop();
      this.handlers.sessionEnded();
      return;
    }
    const delay = Math.min(MAX_DELAY_MS, 1000 * 2 ** this.retries) * (0.5 + Math.random() / 2);
    this.retries += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Reconnect at once (the banner's button). */
  retryNow() {
    this.stopped = false;
    this.connect();
  }
}

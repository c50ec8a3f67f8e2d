// A switchable "network" for tests and demos, loaded only when the page is opened with ?debug.
// It wraps the browser's WebSocket: cut() drops every open socket as a network failure would
// (the client sees close code 1006) and makes new ones fail until restore(). The protocol client
// cannot tell it from the real thing, which is the point: it exercises the real reconnect path.

export function createNetworkSwitch(RealWebSocket = globalThis.WebSocket) {
  let down = false;
  const live = new Set();

  class SwitchedWebSocket {
    #real = null;
    #failed = false;

    constructor(url, protocols) {
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      if (down) {
        // A dead network refuses asynchronously, like a real connect attempt.
        setTimeout(() => this.fail(), 50);
        return;
      }
      // The subprotocols carry the sign-in token in jwt mode; pass them on untouched.
      const ws = protocols === undefined ? new RealWebSocket(url) : new RealWebSocket(url, protocols);
      this.#real = ws;
      live.add(this);
      ws.onopen = (ev) => this.onopen?.(ev);
      ws.onmessage = (ev) => this.onmessage?.(ev);
      ws.onerror = (ev) => this.onerror?.(ev);
      ws.onclose = (ev) => {
        live.delete(this);
        this.onclose?.(ev);
      };
    }

    get protocol() {
      return this.#real?.protocol ?? "";
    }

    get readyState() {
      if (this.#failed) return 3;
      return this.#real ? this.#real.readyState : 0;
    }

    send(data) {
      if (this.#failed) throw new Error("network is down");
      this.#real.send(data);
    }

    close(code, reason) {
      this.#real?.close(code, reason);
    }

    /** Ends this socket as a dropped network would: no close handshake seen, code 1006. */
    fail() {
      if (this.#failed) return;
      this.#failed = true;
      live.delete(this);
      const ws = this.#real;
      if (ws) {
        ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
        ws.close();
      }
      this.onclose?.({ code: 1006, reason: "network cut (debug)", wasClean: false });
    }
  }

  return {
    WebSocket: SwitchedWebSocket,
    cut() {
      down = true;
      for (const socket of [...live]) socket.fail();
    },
    restore() {
      down = false;
    },
    get isDown() {
      return down;
    },
  };
}

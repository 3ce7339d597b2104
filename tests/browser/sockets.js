// Added before any page script (Playwright init script): the SDK captures `WebSocket` when its
// bundle loads, so this keeps a handle on every socket it opens. `window.cutSignaling()` then
// closes them abnormally, as a network blip would, without touching the SDK.
(function () {
  const Native = window.WebSocket;
  window.sockets = [];
  class TrackedWebSocket extends Native {
    constructor(...args) {
      super(...args);
      window.sockets.push(this);
    }
  }
  window.WebSocket = TrackedWebSocket;
  window.cutSignaling = function () {
    let cut = 0;
    window.sockets.forEach((ws) => {
      if (ws.readyState === Native.OPEN || ws.readyState === Native.CONNECTING) {
        ws.close(4000, 'network blip (test)');
        cut += 1;
      }
    });
    return cut;
  };
})();

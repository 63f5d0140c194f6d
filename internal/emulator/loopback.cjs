// Preloaded into kinesis-mock (node --require) by internal/emulator: kinesis-mock 0.6 listens on
// 0.0.0.0 and has no setting for the address, so every server it opens is bound to
// CDP_BIND_HOST (default 127.0.0.1) instead of every interface.
"use strict";
const net = require("net");
const host = process.env.CDP_BIND_HOST || "127.0.0.1";
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))) {
    // listen(port[, host][, backlog][, callback])
    if (typeof args[1] === "string") {
      args[1] = host;
    } else {
      args.splice(1, 0, host);
    }
  } else if (first && typeof first === "object" && "port" in first) {
    args[0] = Object.assign({}, first, { host });
  }
  return listen.apply(this, args);
};

// Preloaded into the everything server (node --require): it listens on a port only, which means every
// interface; tests must bind 127.0.0.1 alone.
const net = require("node:net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" || typeof args[0] === "string") {
    const port = Number(args[0]);
    const callback = args.find((arg) => typeof arg === "function");
    return listen.call(this, { port, host: "127.0.0.1" }, callback);
  }
  return listen.apply(this, args);
};

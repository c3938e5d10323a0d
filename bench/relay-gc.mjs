// Asks a Node process started with --inspect=127.0.0.1:PORT to run a full
// garbage collection (the DevTools protocol's HeapProfiler.collectGarbage), so
// that bench/relay can tell memory that is still held from garbage that V8
// would collect lazily. Run with `node --experimental-websocket` on Node 20
// (WebSocket is global from Node 22 on).   node relay-gc.mjs PORT
const port = process.argv[2];
if (!port) {
  console.error('usage: relay-gc.mjs INSPECTOR_PORT');
  process.exit(2);
}
const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
const target = targets[0]?.webSocketDebuggerUrl;
if (!target) throw new Error(`no inspector target on port ${port}`);
const socket = new WebSocket(target);
await new Promise((resolve, reject) => {
  socket.addEventListener('open', resolve, { once: true });
  socket.addEventListener('error', reject, { once: true });
});
let id = 0;
const call = (method) =>
  new Promise((resolve) => {
    const mine = ++id;
    const onMessage = (event) => {
      const message = JSON.parse(String(event.data));
      if (message.id !== mine) return;
      socket.removeEventListener('message', onMessage);
      resolve(message);
    };
    socket.addEventListener('message', onMessage);
    socket.send(JSON.stringify({ id: mine, method }));
  });
// Twice: the first pass runs finalizers (FinalizationRegistry, WeakRef cleanup) whose garbage the second collects.
await call('HeapProfiler.collectGarbage');
await call('HeapProfiler.collectGarbage');
socket.close();

// The ES module of @realtime-go/client. realtime.js is the one source: a
// classic script (the one the Go handler serves) that defines
// globalThis.RealtimeSocket; importing it for its side effect and
// re-exporting keeps a single copy of the code.
import './realtime.js';

export const RealtimeSocket = globalThis.RealtimeSocket;
export const Subscription = RealtimeSocket.Subscription;
export default RealtimeSocket;

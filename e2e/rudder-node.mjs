// rudder-node.mjs sends a plan of tracking calls to Cairn through
// @rudderstack/rudder-sdk-node with its defaults: gzip on, which it posts
// with axios's form content type (application/x-www-form-urlencoded).
//
// Usage: node rudder-node.mjs < plan.json
//
// The plan is written by cmd/server/clients_test.go:
// {"url": ..., "writeKey": ..., "calls": [{"type": "identify", "userId": ...}, ...]}.
// Only retries are turned off, so that a refused batch fails the run at once.
// Exits 1 with the errors if a batch failed.
import Analytics from '@rudderstack/rudder-sdk-node';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const plan = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const errors = [];
const client = new Analytics(plan.writeKey, {
  dataPlaneUrl: plan.url,
  retryCount: 0,
  errorHandler: (err) => {
    const res = err.response;
    errors.push(res ? `${res.status} ${res.statusText}: ${JSON.stringify(res.data)}` : String(err));
  },
});

const methods = {
  identify: (c) => client.identify({ userId: c.userId, anonymousId: c.anonymousId, traits: c.traits }),
  track: (c) => client.track({ userId: c.userId, anonymousId: c.anonymousId, event: c.event, properties: c.properties }),
  page: (c) => client.page({ userId: c.userId, anonymousId: c.anonymousId, name: c.name, properties: c.properties }),
  group: (c) => client.group({ userId: c.userId, anonymousId: c.anonymousId, groupId: c.groupId, traits: c.traits }),
  alias: (c) => client.alias({ previousId: c.previousId, userId: c.userId }),
};
for (const call of plan.calls) {
  const send = methods[call.type];
  if (!send) throw new Error(`unknown call type ${call.type}`);
  send(call);
}
// The first call is sent at once and the rest queue up to flushAt (20):
// flush until the queue is empty, each flush awaiting the one in flight.
while (client.queue.length > 0) await client.flush();
await client.flush();

if (errors.length > 0) {
  console.error(errors.join('\n'));
  process.exit(1);
}
console.log(JSON.stringify({ library: 'rudder-sdk-node', sent: plan.calls.length }));

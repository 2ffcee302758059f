// Sends a plan of track events through one official Node SDK, unmodified, and flushes it:
// what tests/e2e/test_sdk_clients.py runs for the Node SDKs beside the Python ones.
//
//   node send.mjs <posthog-node|segment-node|rudderstack-node> <host> <write key> < plan.json
//
// The plan is a JSON array of [messageId, person, ISO time]. Exits 1, printing them, when the
// SDK reported errors (a batch it gave up on).
import { readFileSync } from 'node:fs';

import RudderAnalytics from '@rudderstack/rudder-sdk-node';
import { Analytics } from '@segment/analytics-node';
import { PostHog } from 'posthog-node';

const [sdk, host, writeKey] = process.argv.slice(2);
const plan = JSON.parse(readFileSync(0, 'utf8'));
const errors = [];

// A server enqueues events between other work: the SDK's timers and sockets get their turn. Left
// without one while all 2,000 are enqueued, RudderStack's SDK sent a batch stamped with its
// sentAt 5.8 s earlier, and Pulse's clock-skew correction moved its events by as much.
async function aTurnForTheSdk(index) {
  if (index % 50 === 0) await new Promise(setImmediate);
}

function track(client, messageId, person, at, callback) {
  client.track(
    {
      userId: person,
      event: 'Product Viewed',
      properties: { sku: messageId.slice(0, 8) },
      timestamp: new Date(at),
      messageId,
    },
    callback,
  );
}

if (sdk === 'posthog-node') {
  // Retries a second apart (3 s by default), so the lost acknowledgements cost little time.
  const client = new PostHog(writeKey, { host, flushAt: 100, fetchRetryDelay: 1000 });
  client.on('error', (error) => errors.push(String(error)));
  for (const [index, [uuid, person, at]] of plan.entries()) {
    await aTurnForTheSdk(index);
    client.capture({
      distinctId: person,
      event: 'Product Viewed',
      properties: { sku: uuid.slice(0, 8) },
      timestamp: new Date(at),
      uuid,
    });
  }
  await client.shutdown();
} else if (sdk === 'segment-node') {
  const client = new Analytics({ writeKey, host, maxEventsInBatch: 100 });
  client.on('error', (error) => errors.push(String(error.reason ?? error.code ?? error)));
  for (const [index, [messageId, person, at]] of plan.entries()) {
    await aTurnForTheSdk(index);
    track(client, messageId, person, at);
  }
  await client.closeAndFlush();
} else if (sdk === 'rudderstack-node') {
  // Its defaults, gzip on: gzipped JSON typed as a form, which the ingest takes (body.py).
  const client = new RudderAnalytics(writeKey, { dataPlaneUrl: host, flushAt: 100 });
  const sent = [];
  for (const [index, [messageId, person, at]] of plan.entries()) {
    await aTurnForTheSdk(index);
    sent.push(
      new Promise((resolve) => {
        track(client, messageId, person, at, (error) => {
          if (error) errors.push(String(error));
          resolve();
        });
      }),
    );
  }
  client.flush();
  await Promise.all(sent);
} else {
  errors.push(`unknown SDK ${sdk}`);
}

if (errors.length > 0) {
  console.error(errors.join('\n'));
  process.exit(1);
}

// Sends a shopper's story to Shoptrail with Segment's official Node SDK,
// unmodified, pointed at Shoptrail with its host option. Run by
// TestSegmentNodeSDK: node send.mjs <public URL> <write key>.
// It exits 1 if any call was not delivered, and prints each HTTP answer.
import { Analytics } from '@segment/analytics-node'

const [host, writeKey] = process.argv.slice(2)
const analytics = new Analytics({ writeKey, host, flushAt: 20, flushInterval: 200, maxRetries: 1 })

let failed = false
analytics.on('error', (err) => {
  failed = true
  console.error('delivery failed:', err.code ?? '', err.reason?.message ?? err.message ?? err)
})
analytics.on('http_response', (r) => console.log('HTTP', r.status, r.url))

const cb = (err) => {
  if (err) {
    failed = true
    console.error('call failed:', err.message ?? err)
  }
}

// a visit from a newsletter, before the shopper logs in
analytics.page({
  anonymousId: 'ajs-anon-1',
  name: 'Trail Runner 3',
  properties: { url: 'https://shop.example/p/1001', referrer: 'https://mail.example/' },
  context: {
    campaign: { source: 'newsletter', medium: 'email', name: 'black-friday' },
    userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
    ip: '203.0.113.7',
  },
}, cb)
// the login: the anonymous visit and the shop's user id become one shopper
analytics.identify({ userId: 'user-42', anonymousId: 'ajs-anon-1', traits: { email: 'Jane@Example.com', name: 'Jane' } }, cb)
analytics.track({
  userId: 'user-42',
  event: 'Product Viewed',
  properties: { product_id: '1001', sku: 'TR3-42', name: 'Trail Runner 3', price: 139.68, currency: 'EUR' },
}, cb)
analytics.track({
  userId: 'user-42',
  event: 'Order Completed',
  properties: {
    order_id: 'A-17', total: 99.9, currency: 'EUR',
    products: [{ product_id: '1001', sku: 'TR3-42', price: 99.9, quantity: 1 }],
  },
}, cb)

await analytics.closeAndFlush({ timeout: 10000 })
process.exit(failed ? 1 : 0)

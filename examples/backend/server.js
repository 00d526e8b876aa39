// A minimal backend for the mini program (examples/miniprogram): plain
// node:http, no dependencies. It holds the wxcampaign API token, which must
// never reach the mini program, and forwards the two calls of the subscribe
// flow to the engine:
//
//   GET  /api/subscribe/templates?triggerAct=&busNo=&openid=
//        -> GET  {WXC_URL}/v1/scenes/templates?...&format=ids   (bare array)
//   POST /api/subscribe/result  (the popSubscribeResult body)
//        -> POST {WXC_URL}/v1/subscriptions                     (unchanged)
//
// Environment: WXC_URL (the engine, e.g. http://127.0.0.1:8080),
// WXC_API_TOKEN (one of http.token/tokens), PORT (default 3000; 0 picks a
// free port), HOST (default 127.0.0.1). It prints "listening on http://..."
// when ready.
//
// A real backend takes the openid from its own login session, not from the
// client's body; this example trusts the body to stay short. It forwards an
// Idempotency-Key header when the client sends one: without it every
// request is a new result, so a retried POST may add a credit WeChat does not
// have (it costs one 43101 at send time, nothing else).

const http = require('node:http')

const engine = (process.env.WXC_URL || 'http://127.0.0.1:8080').replace(/\/$/, '')
const token = process.env.WXC_API_TOKEN
if (!token) {
  console.error('WXC_API_TOKEN is required')
  process.exit(2)
}
const MAX_BODY = 64 << 10

function send(res, status, body, type = 'application/json; charset=utf-8') {
  res.writeHead(status, { 'content-type': type })
  res.end(typeof body === 'string' ? body : JSON.stringify(body))
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = []
    let size = 0
    req.on('data', (c) => {
      size += c.length
      if (size > MAX_BODY) {
        reject(new Error('body too large'))
        req.destroy()
        return
      }
      chunks.push(c)
    })
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

// forward calls the engine and relays its status and JSON body.
async function forward(res, method, path, { body, headers = {} } = {}) {
  const r = await fetch(engine + path, {
    method,
    body,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    signal: AbortSignal.timeout(10000),
  })
  send(res, r.status, await r.text(), r.headers.get('content-type') || 'application/json')
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://backend')
    if (req.method === 'GET' && url.pathname === '/api/subscribe/templates') {
      const q = new URLSearchParams({ format: 'ids' })
      for (const name of ['triggerAct', 'busNo', 'openid']) {
        const v = url.searchParams.get(name)
        if (v) q.set(name, v)
      }
      return await forward(res, 'GET', `/v1/scenes/templates?${q}`)
    }
    if (req.method === 'POST' && url.pathname === '/api/subscribe/result') {
      const headers = {}
      const key = req.headers['idempotency-key']
      if (key) headers['idempotency-key'] = key
      return await forward(res, 'POST', '/v1/subscriptions', { body: await readBody(req), headers })
    }
    send(res, 404, { error: { code: 'not_found', message: `no such endpoint: ${url.pathname}` } })
  } catch (err) {
    console.error('backend:', err.message)
    send(res, 502, { error: { code: 'upstream', message: 'the engine did not answer' } })
  }
})

server.listen(Number(process.env.PORT ?? 3000), process.env.HOST || '127.0.0.1', () => {
  const { address, port } = server.address()
  console.log(`listening on http://${address}:${port}`)
})

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)))

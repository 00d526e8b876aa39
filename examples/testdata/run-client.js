// Runs examples/miniprogram's goods page and utils/subscribe.js under Node with
// the wx APIs stubbed, for the end-to-end test (examples/e2e_test.go):
//
//   wx.request                  real HTTP to the backend (fetch), with
//                               wx.request's conventions (GET data in the
//                               query, JSON body, JSON answer parsed)
//   wx.requestSubscribeMessage  answers from USERS: {"<tmplId>": "accept" ...};
//                               fails as WeChat does on more than MAX_IDS ids
//                               (20003) or one-time and long-term mixed (20002)
//
// Environment: BACKEND_URL, USERS (JSON array of {openId, goods, choices}),
// LONG_TERM (JSON array of long-term template ids), MAX_IDS (default 3).
// Prints one JSON line per user: {openId, offered, reported} or {openId, error}.
const path = require('node:path')

const users = JSON.parse(process.env.USERS || '[]')
const longTerm = new Set(JSON.parse(process.env.LONG_TERM || '[]'))
const maxIDs = Number(process.env.MAX_IDS || 3)
let current // the user tapping now

globalThis.wx = {
  request({ url, method = 'GET', data, header = {}, success, fail }) {
    let body
    if (method === 'GET' && data) {
      const q = new URLSearchParams()
      for (const [k, v] of Object.entries(data)) if (v !== undefined && v !== null) q.set(k, String(v))
      url += (url.includes('?') ? '&' : '?') + q
    } else if (data !== undefined) {
      body = typeof data === 'string' ? data : JSON.stringify(data)
    }
    fetch(url, { method, headers: header, body })
      .then(async (r) => {
        const text = await r.text()
        let parsed = text
        try { parsed = JSON.parse(text) } catch { /* wx.request keeps the text */ }
        success && success({ statusCode: r.status, data: parsed, header: Object.fromEntries(r.headers) })
      })
      .catch((err) => fail && fail({ errMsg: `request:fail ${err.message}` }))
  },
  requestSubscribeMessage({ tmplIds, success, fail }) {
    setImmediate(() => {
      const kinds = new Set(tmplIds.map((id) => longTerm.has(id)))
      if (tmplIds.length === 0 || tmplIds.length > maxIDs) return fail({ errCode: 20003, errMsg: 'requestSubscribeMessage:fail too many tmplIds' })
      if (kinds.size > 1) return fail({ errCode: 20002, errMsg: 'requestSubscribeMessage:fail mixed template types' })
      const r = { errMsg: 'requestSubscribeMessage:ok' }
      for (const id of tmplIds) r[id] = current.choices[id] || 'reject'
      success(r)
    })
  },
}

const app = { globalData: { openId: '' } }
globalThis.getApp = () => app
let pageDef
globalThis.Page = (def) => { pageDef = def }

const root = path.join(__dirname, '..', 'miniprogram')
require(path.join(root, 'utils/config.js')).baseUrl = process.env.BACKEND_URL
require(path.join(root, 'pages/goods/goods.js'))

async function main() {
  let failed = false
  for (const u of users) {
    current = u
    app.globalData.openId = u.openId
    // A page instance as the framework makes it: data and setData.
    const page = Object.create(pageDef)
    page.data = { ...pageDef.data, goods: u.goods || pageDef.data.goods }
    page.setData = (d) => Object.assign(page.data, d)
    const out = await page.onAddToCart()
    if (out.error) failed = true
    console.log(JSON.stringify({ openId: u.openId, ...out }))
  }
  process.exit(failed ? 1 : 0)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})

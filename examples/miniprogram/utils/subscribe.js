// The subscribe flow of a mini program, as teams write it: ask the backend
// which templates to offer for a trigger, show wx.requestSubscribeMessage,
// report what the user chose. The backend (../../backend/server.js) holds the
// wxcampaign API token and forwards both calls to the engine.
//
// Usage, from a tap handler (WeChat shows the popup only after a tap):
//   const { subscribe } = require('../../utils/subscribe')
//   subscribe(1, { busNo: goods.id, openId, extraVariableMap: { saved_price: goods.price } })

const config = require('./config')

// The trigger names are the scenes of the campaigns (`scenes:` in the
// campaign files), Chinese as the product team named them.
const TRIGGER_ACT = {
  1: '加入购物车',
  2: '订单详情',
  3: '提交订单',
  4: '支付成功',
  5: '提交售后申请（退货退款）',
}

// request wraps wx.request in a promise; a non-2xx answer is an error.
function request(method, path, data) {
  return new Promise((resolve, reject) => {
    wx.request({
      url: config.baseUrl + path,
      method,
      data,
      header: { 'content-type': 'application/json' },
      success(res) {
        if (res.statusCode >= 200 && res.statusCode < 300) resolve(res)
        else reject(new Error(`${method} ${path}: HTTP ${res.statusCode} ${JSON.stringify(res.data)}`))
      },
      fail(err) { reject(new Error(`${method} ${path}: ${err.errMsg}`)) },
    })
  })
}

// findCustomerPopTemplate asks which template ids to offer: res.data is the
// bare array wx.requestSubscribeMessage takes (never one-time and long-term
// ids mixed, never more than one call accepts).
function findCustomerPopTemplate({ triggerAct, busNo, openId }) {
  return request('GET', '/api/subscribe/templates', { triggerAct, busNo, openid: openId })
}

// popSubscribeResult reports the user's choice.
function popSubscribeResult(body) {
  return request('POST', '/api/subscribe/result', body)
}

function requestSubscribeMessage(tmplIds) {
  return new Promise((resolve, reject) => {
    wx.requestSubscribeMessage({ tmplIds, success: resolve, fail: reject })
  })
}

const ACCEPT = ['accept', 'acceptWithAudio', 'acceptWithAlert']

// subscribe runs the whole flow for trigger type. It resolves to what was
// offered and reported; nothing is shown when the scene offers nothing.
async function subscribe(type, { busNo, openId, extraVariableMap }) {
  const triggerAct = TRIGGER_ACT[type]
  if (!triggerAct) throw new Error(`unknown trigger type ${type}`)
  const res = await findCustomerPopTemplate({ triggerAct, busNo, openId })
  if (res.data.length === 0) return { offered: [] }
  // r: {'<tmplId>': 'accept' | 'reject' | 'ban' | 'filter', errMsg: ...}
  const r = await requestSubscribeMessage(res.data)
  const pick = (...values) => res.data.filter((id) => values.includes(r[id]))
  const body = {
    busNo,
    extraVariableMap,
    openId,
    triggerAct,
    agreeTemplateIds: pick(...ACCEPT),
    rejectTemplateIds: pick('reject'),
    banTemplateIds: pick('ban'),
    filterTemplateIds: pick('filter'),
  }
  await popSubscribeResult(body)
  return { offered: res.data, reported: body }
}

module.exports = { TRIGGER_ACT, subscribe, findCustomerPopTemplate, popSubscribeResult }

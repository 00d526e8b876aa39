// The openid comes from the backend's login (wx.login, then jscode2session on
// the backend: POST /v1/session of wxcampaign, or the backend's own).
App({
  globalData: { openId: '' },
})

// A goods page: "加入购物车" adds to the cart and offers the price-drop
// reminder (trigger type 1), with the price the user saw as a variable the
// campaign compares against later.
const { subscribe } = require('../../utils/subscribe')

Page({
  data: {
    goods: { id: 'p1', name: '咖啡豆', price: '15.00' },
  },

  // bindtap of the button; the popup may only follow a tap.
  async onAddToCart() {
    const { goods } = this.data
    const { openId } = getApp().globalData
    try {
      const out = await subscribe(1, {
        busNo: goods.id,
        openId,
        extraVariableMap: { saved_price: goods.price, goods_name: goods.name },
      })
      this.setData({ subscribed: out })
      return out
    } catch (err) {
      // The cart works without the reminder: log, do not block the user.
      console.error('subscribe failed', err)
      return { error: String(err) }
    }
  },
})

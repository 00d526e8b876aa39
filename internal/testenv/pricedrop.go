package testenv

// The price-drop campaign (configs/campaigns/price-drop.yaml) is the
// fixture of many packages' tests. Its rule lives here once; a test
// composes its own header (name, schedule, template) and tail (limits,
// quiet hours) around it, so that its line numbers stay its own.

// PriceDropPage is the campaign's page expression (a YAML scalar).
const PriceDropPage = `'"pages/goods/detail?id=" + grant.biz_no'`

// PriceDropRule is the campaign's scene, product fact and condition: the
// user saved a product (grant.biz_no) at a price (grant.vars.saved_price)
// and it is now cheaper and in stock.
const PriceDropRule = `scenes: [add_to_cart]
facts:
  product:
    query: SELECT id, name, price, stock FROM products WHERE id IN (:keys)
    key: grant.biz_no
    column: id
when: product != nil && product.price < num(grant.vars.saved_price) && product.stock > 0
`

// PriceDropData2 is the data block for a template with the keys thing1 and
// amount2 only.
const PriceDropData2 = `data:
  thing1: product.name
  amount2: money(product.price)
`

// PriceDropData is the shipped campaign's data block (thing1, amount2,
// amount3, thing4).
const PriceDropData = PriceDropData2 + `  amount3: money(num(grant.vars.saved_price))
  thing4: '"降价了，快来看看"'
`

// ProductsDDL creates the products fact table PriceDropRule reads (valid
// on MySQL/MariaDB and SQLite).
const ProductsDDL = `CREATE TABLE products (id VARCHAR(64) PRIMARY KEY, name VARCHAR(100), price DECIMAL(10,2), stock INT)`

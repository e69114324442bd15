#!/usr/bin/env node
// The web console (plugins/admin_http/console) in headless Chromium against a real broker.
//
//   tests/clients/run_with_broker.py --plugins storage,kafka,admin_http -- \
//       node tests/console/console_test.js [SCREENSHOT.png] [--serve-source]
//
// The harness sets SLUICE_BOOTSTRAP (Kafka) and SLUICE_ADMIN (http://127.0.0.1:PORT). The test
// creates a topic with 3 partitions, produces 20 records to each, and runs a kafkajs consumer
// group that reads them and commits offsets 15, 20 and 10 (a lag of 15), and stays a member; a
// second group, whose id is HTML, commits through the admin client. Then it opens the console
// served by the broker at SLUICE_ADMIN/ in /usr/bin/chromium (playwright-core, pinned in
// package.json) while a producer keeps writing to another topic, and checks that the page shows:
// the broker (address, shards, version), a healthy cluster, the topic with its partition count
// and, once expanded, each partition's high watermark as /v1/topics/{name} has it; the groups with
// the total and per-partition lag of /v1/groups/{id}; the HTML group id as text (no markup
// injected); and throughput chart points with bytes flowing. Then, with /metrics rewritten in the
// browser without the per-topic counters and the group-lag gauge, that the page falls back (lag from
// the groups' details, no per-topic rates, request bytes in the chart). Then the error states: with
// the admin API unreachable the page says so, and a failing route shows its error in its own section.
// The page must log no console error and throw no exception. The screenshot goes to SCREENSHOT.png
// (default: $SLUICE_CONSOLE_SCREENSHOT, else console.png in the working directory).
//
// --serve-source (or SLUICE_CONSOLE_SERVE_SOURCE=1): for console development, serve the page from
// the source tree (no plugin rebuild after an edit) by a server in this process that proxies every
// other path to SLUICE_ADMIN (or SLUICE_CONSOLE_API when set); SLUICE_CONSOLE_DIR serves another directory.
// Not what CTest runs.
'use strict'

const assert = require('node:assert/strict')
const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')

const CHROMIUM = process.env.SLUICE_CHROMIUM || '/usr/bin/chromium'
const REPO = path.resolve(__dirname, '..', '..')
const CONSOLE_DIR = process.env.SLUICE_CONSOLE_DIR || path.join(REPO, 'plugins', 'admin_http', 'console')

function fail(msg) {
  console.error(`FAILED: ${msg}`)
  process.exit(1)
}

// ---------------------------------------------------------------- prerequisites (fail, never skip)

let chromium
try {
  ({ chromium } = require('playwright-core'))
} catch (e) {
  fail(`cannot load playwright-core (${e.message}): run scripts/install-deps.sh (it runs npm ci in tests/console)`)
}
if (!fs.existsSync(CHROMIUM)) {
  fail(`no Chromium at ${CHROMIUM}: run scripts/install-deps.sh (it installs Debian's chromium package)`)
}
let kafkajs
try {
  kafkajs = require(path.join(REPO, 'tests', 'clients', 'kafkajs', 'node_modules', 'kafkajs'))
} catch (e) {
  fail(`cannot load kafkajs from tests/clients/kafkajs/node_modules (${e.message}): run scripts/install-deps.sh`)
}
const { Kafka, logLevel } = kafkajs

const args = process.argv.slice(2)
const serveSource = args.includes('--serve-source') || process.env.SLUICE_CONSOLE_SERVE_SOURCE === '1'
const screenshot = path.resolve(args.find(a => !a.startsWith('--')) || process.env.SLUICE_CONSOLE_SCREENSHOT ||
                                'console.png')
const bootstrap = process.env.SLUICE_BOOTSTRAP
const adminBase = (process.env.SLUICE_CONSOLE_API || process.env.SLUICE_ADMIN || '').replace(/\/+$/, '')
if (!bootstrap || !adminBase) {
  fail('SLUICE_BOOTSTRAP and SLUICE_ADMIN must be set: run through tests/clients/run_with_broker.py ' +
       '--plugins storage,kafka,admin_http -- node tests/console/console_test.js')
}

const runId = `${process.pid}-${Date.now() % 1e9}`
const TOPIC = `console-orders-${runId}`
const LOAD_TOPIC = `console-load-${runId}`
const GROUP = `console-billing-${runId}`
// Group ids are arbitrary strings (topic names cannot hold markup): this one must show as text. (No "/":
// the admin router does not route a group id with a percent-encoded slash yet.)
const HTML_GROUP = `<img src=x onerror="window.__injected=1"><b>console & "group" ${runId}`
const PARTITIONS = 3
const PER_PARTITION = 20
const COMMITS = [15, 20, 10]   // committed offset per partition
const EXPECTED_LAG = COMMITS.reduce((s, c) => s + (PER_PARTITION - c), 0)

const sleep = ms => new Promise(r => setTimeout(r, ms))
async function waitFor(pred, what, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      const v = await pred()
      if (v) return v
    } catch (e) {
      last = e
    }
    if (Date.now() > deadline) {
      assert.fail(`${what}: not true after ${timeoutMs / 1000} s${last ? ` (last error: ${last.message})` : ''}`)
    }
    await sleep(250)
  }
}
function step(name) {
  console.log(`-- ${name}`)
}

async function api(p) {
  const res = await fetch(adminBase + p)
  const body = await res.text()
  if (!res.ok) throw new Error(`GET ${adminBase}${p}: HTTP ${res.status}: ${body.slice(0, 300)}`)
  return JSON.parse(body)
}

// ---------------------------------------------------------------- --serve-source

function sourceServer() {
  const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
                  '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png' }
  const target = new URL(adminBase)
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x')
    let file = null
    if (url.pathname === '/') file = 'index.html'
    else if (/^\/console\/[^/]+$/.test(url.pathname)) file = decodeURIComponent(url.pathname.slice(9))
    if (file !== null) {
      const p = path.join(CONSOLE_DIR, path.basename(file))
      fs.readFile(p, (err, data) => {
        if (err) {
          res.writeHead(404, { 'Content-Type': 'application/json' })
          res.end(JSON.stringify({ code: 404, message: `no console file ${file}` }))
          return
        }
        res.writeHead(200, { 'Content-Type': types[path.extname(p)] || 'application/octet-stream' })
        res.end(data)
      })
      return
    }
    const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url,
                              headers: { ...req.headers, host: target.host } }, r => {
      res.writeHead(r.statusCode, r.headers)
      r.pipe(res)
    })
    up.on('error', () => { res.writeHead(502); res.end() })
    req.pipe(up)
  })
  return new Promise(resolve => server.listen(0, '127.0.0.1', () => resolve(server)))
}

// ---------------------------------------------------------------- Kafka side

const kafka = new Kafka({ clientId: 'sluice-console-test', brokers: [bootstrap], logLevel: logLevel.WARN,
                          connectionTimeout: 10000, requestTimeout: 30000, retry: { retries: 5 } })
const admin = kafka.admin()
const producer = kafka.producer({ allowAutoTopicCreation: false })
const consumer = kafka.consumer({ groupId: GROUP, sessionTimeout: 30000, heartbeatInterval: 1000,
                                  retry: { retries: 5 } })

async function setupKafka() {
  step(`create ${TOPIC} (${PARTITIONS} partitions) and ${LOAD_TOPIC}`)
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS },
                                      { topic: LOAD_TOPIC, numPartitions: 1 }], waitForLeaders: true })
  await producer.connect()
  step(`produce ${PER_PARTITION} records to each partition`)
  for (let p = 0; p < PARTITIONS; p++) {
    await producer.send({ topic: TOPIC, acks: -1, messages: Array.from({ length: PER_PARTITION }, (_, i) => ({
      partition: p, key: `k${i}`, value: `record ${i} of partition ${p}: ${'x'.repeat(100)}` })) })
  }

  step(`consumer group ${GROUP}: read everything, commit offsets ${COMMITS.join(', ')}`)
  const seen = new Map()
  await consumer.connect()
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true })
  await consumer.run({ autoCommit: false, eachMessage: async ({ partition }) => {
    seen.set(partition, (seen.get(partition) || 0) + 1)
  } })
  await waitFor(() => [...seen.values()].reduce((a, b) => a + b, 0) >= PARTITIONS * PER_PARTITION,
                `the consumer reads ${PARTITIONS * PER_PARTITION} records`, 60000)
  await consumer.commitOffsets(COMMITS.map((o, p) => ({ topic: TOPIC, partition: p, offset: String(o) })))

  step('a second group, with an HTML group id, commits through the admin client')
  await admin.setOffsets({ groupId: HTML_GROUP, topic: TOPIC, partitions: [{ partition: 0, offset: '5' }] })
}

// Keeps bytes flowing while the page draws its chart.
function startLoad() {
  let stop = false
  const done = (async () => {
    const value = Buffer.alloc(1000, 'v')
    while (!stop) {
      await producer.send({ topic: LOAD_TOPIC, acks: 1, messages: Array.from({ length: 20 }, () => ({ value })) })
      await sleep(100)
    }
  })()
  return async () => { stop = true; await done }
}

// ---------------------------------------------------------------- the page

const text = (page, sel) => page.locator(sel).first().textContent({ timeout: 2000 }).then(t => t.trim())
const fmt = n => Number(n).toLocaleString('en-US')   // how the console prints integers

// The text of a cell in a section's row; rows are found by a data attribute compared in the page (values
// are user data, never put into a selector).
function cellText(page, section, rowAttr, rowValue, cellSel) {
  return page.evaluate(([section, attr, value, sel]) => {
    const row = [...document.querySelectorAll(`#${section} > table > tbody > tr[data-${attr}]`)]
      .find(r => r.getAttribute(`data-${attr}`) === value)
    if (!row) return null
    const cell = row.querySelector(sel)
    return cell ? cell.textContent.trim() : null
  }, [section, rowAttr, rowValue, cellSel])
}
function clickRow(page, section, rowAttr, rowValue) {
  return page.evaluate(([section, attr, value]) => {
    const row = [...document.querySelectorAll(`#${section} > table > tbody > tr[data-${attr}]`)]
      .find(r => r.getAttribute(`data-${attr}`) === value)
    row.querySelector('button').click()
  }, [section, rowAttr, rowValue])
}
async function waitText(page, what, get, want, timeoutMs = 15000) {
  let got
  await waitFor(async () => { got = await get(); return got === want }, `${what}: page shows ${JSON.stringify(got)}, ` +
                `want ${JSON.stringify(want)}`, timeoutMs).catch(() => {
    assert.fail(`${what}: the page shows ${JSON.stringify(got)}, want ${JSON.stringify(want)}`)
  })
}

async function checkPage(page, problems) {
  step('brokers and health')
  const brokers = await api('/v1/brokers')
  assert.ok(Array.isArray(brokers) && brokers.length >= 1, `/v1/brokers: ${JSON.stringify(brokers)}`)
  for (const b of brokers) {
    const id = String(b.node_id)
    await waitText(page, `broker ${id} address`, () => cellText(page, 'brokers', 'broker', id, '.c-address'), `${b.host}:${b.port}`)
    assert.equal(await cellText(page, 'brokers', 'broker', id, '.c-shards'), String(b.shards), `broker ${id} shards`)
    assert.equal(await cellText(page, 'brokers', 'broker', id, '.c-version'), String(b.version), `broker ${id} version`)
    assert.match(await cellText(page, 'brokers', 'broker', id, '.c-uptime'), /^\d+[dhms]/, `broker ${id} uptime`)
  }
  const health = await api('/v1/cluster/health')
  await waitText(page, 'health badge', () => text(page, '#health-badge'), health.is_healthy ? 'healthy' : 'unhealthy')

  step(`topic ${TOPIC}`)
  const topic = await api(`/v1/topics/${encodeURIComponent(TOPIC)}`)
  assert.equal(topic.partition_count, PARTITIONS, `/v1/topics/${TOPIC} partition_count`)
  await waitText(page, `${TOPIC} partitions`, () => cellText(page, 'topics', 'topic', TOPIC, '.c-partitions'), String(PARTITIONS))
  await waitText(page, `${TOPIC} messages`, () => cellText(page, 'topics', 'topic', TOPIC, '.c-messages'), fmt(topic.messages))
  await clickRow(page, 'topics', 'topic', TOPIC)
  for (const p of topic.partitions) {
    assert.equal(p.high_watermark, PER_PARTITION, `/v1/topics/${TOPIC} partition ${p.partition} high_watermark`)
    const detail = `tr[data-topic-detail] tr[data-partition="${p.partition}"]`
    await waitText(page, `${TOPIC}[${p.partition}] high watermark`, () => text(page, `${detail} .c-hwm`),
                   fmt(p.high_watermark))
    assert.equal(await text(page, `${detail} .c-leader`), String(p.leader), `${TOPIC}[${p.partition}] leader`)
    assert.equal(await text(page, `${detail} .c-start`), fmt(p.log_start_offset), `${TOPIC}[${p.partition}] start`)
  }

  step(`group ${GROUP}`)
  const group = await waitFor(async () => {
    const g = await api(`/v1/groups/${encodeURIComponent(GROUP)}`)
    return g.state === 'Stable' && g.total_lag === EXPECTED_LAG && g
  }, `/v1/groups/${GROUP} Stable with total_lag ${EXPECTED_LAG}`)
  await waitText(page, `${GROUP} total lag`, () => cellText(page, 'groups', 'group', GROUP, '.c-lag'), fmt(group.total_lag))
  await waitText(page, `${GROUP} state`, () => cellText(page, 'groups', 'group', GROUP, '.c-state'), group.state)
  await waitText(page, `${GROUP} members`, () => cellText(page, 'groups', 'group', GROUP, '.c-members'),
                 String(group.members.length))
  await clickRow(page, 'groups', 'group', GROUP)
  for (const o of group.offsets) {
    const row = `tr[data-group-detail] tr[data-partition="${o.partition}"]`
    await waitText(page, `${GROUP} ${o.topic}[${o.partition}] lag`, () => text(page, `${row} .c-lag`), fmt(o.lag))
    assert.equal(await text(page, `${row} .c-committed`), fmt(o.committed_offset), `${o.topic}[${o.partition}] committed`)
    assert.equal(await text(page, `${row} .c-hwm`), fmt(o.high_watermark), `${o.topic}[${o.partition}] hwm`)
  }

  step('the HTML group id shows as text')
  const htmlGroup = await api(`/v1/groups/${encodeURIComponent(HTML_GROUP)}`)
  await waitText(page, 'HTML group name', () => cellText(page, 'groups', 'group', HTML_GROUP, '.c-name'), `▸ ${HTML_GROUP}`)
  await waitText(page, 'HTML group lag', () => cellText(page, 'groups', 'group', HTML_GROUP, '.c-lag'), fmt(htmlGroup.total_lag))
  const injected = await page.evaluate(() => ({ img: document.querySelectorAll('img').length,
                                                b: document.querySelectorAll('td b').length,
                                                flag: window.__injected }))
  assert.deepEqual(injected, { img: 0, b: 0, flag: undefined }, 'markup from a group id reached the DOM')

  step('throughput chart')
  const chart = await waitFor(() => page.evaluate(() => {
    const pts = window.sluiceConsole.charts.bytes.points
    const req = window.sluiceConsole.charts.requests.points
    const canvas = document.querySelector('#chart-bytes')
    return pts.length >= 5 && pts.some(p => p.values[0] > 0) && req.some(p => p.values[0] > 0) &&
      { points: pts.length, attr: canvas.dataset.points, maxIn: Math.max(...pts.map(p => p.values[0] || 0)) }
  }), 'the bytes chart has 5 points with bytes in > 0 and the requests chart Produce > 0', 30000)
  assert.equal(chart.attr, String(chart.points), 'canvas data-points')
  console.log(`   ${chart.points} chart points, up to ${Math.round(chart.maxIn)} bytes/s in`)
  assert.deepEqual(problems, [], 'the page logged errors')
}

// A broker without the per-topic and group-lag metrics (older, or another build): the page falls back.
async function checkWithoutNewMetrics(page, problems) {
  step('a /metrics without the per-topic counters and the group-lag gauge')
  const metricsPath = u => new URL(u).pathname === '/metrics'
  await page.route(metricsPath, async r => {
    const res = await r.fetch()
    const body = (await res.text()).split('\n')
      .filter(l => !/sluice_kafka_(topic_|group_lag)/.test(l)).join('\n')
    await r.fulfill({ response: res, body })
  })
  await waitFor(async () => /no per-topic counters/.test(await text(page, '#throughput-note')),
                'the throughput note says the per-topic counters are missing', 15000)
  const polls = await page.evaluate(() => Number(document.body.dataset.polls))
  await waitFor(() => page.evaluate(n => Number(document.body.dataset.polls) >= n + 2, polls), 'two more refreshes')
  await waitText(page, `${LOAD_TOPIC} In/s without per-topic counters`,
                 () => cellText(page, 'topics', 'topic', LOAD_TOPIC, '.c-in'), '—')
  const lag = (await api(`/v1/groups/${encodeURIComponent(HTML_GROUP)}`)).total_lag
  await waitText(page, 'HTML group lag from its detail', () => cellText(page, 'groups', 'group', HTML_GROUP, '.c-lag'),
                 fmt(lag))
  await waitText(page, `${GROUP} lag from its detail`, () => cellText(page, 'groups', 'group', GROUP, '.c-lag'),
                 fmt(EXPECTED_LAG))
  const last = await page.evaluate(() => window.sluiceConsole.charts.bytes.points.slice(-1)[0].values[0])
  assert.ok(last > 0, `bytes in from sluice_kafka_request_bytes_total: ${last}`)
  await page.unroute(metricsPath)
  assert.deepEqual(problems, [], 'the page logged errors without the new metrics')
}

async function checkErrorStates(page, problems) {
  step('error states: admin API unreachable, then a failing route')
  const apiPath = u => { const p = new URL(u).pathname; return p.startsWith('/v1/') || p === '/metrics' }
  await page.route(apiPath, r => r.abort('connectionrefused'))
  await waitFor(async () => /unreachable/i.test(await text(page, '#banner')) && await page.locator('#banner').isVisible(),
                'the banner says the admin API is unreachable', 15000)
  assert.match(await text(page, '#brokers .error'), /unreachable/, 'brokers section error')
  await page.unroute(apiPath)
  await waitFor(async () => !(await page.locator('#banner').isVisible()), 'the banner goes away', 15000)
  const groupsPath = u => new URL(u).pathname === '/v1/groups'
  await page.route(groupsPath, r =>
    r.fulfill({ status: 503, contentType: 'application/json', body: '{"code":503,"message":"test: shard busy"}' }))
  await waitFor(async () => /HTTP 503: test: shard busy/.test(await text(page, '#groups .error')),
                'the groups section shows the 503 error', 15000)
  assert.ok(!(await page.locator('#banner').isVisible()), 'one failing route is not "unreachable"')
  assert.match(await text(page, '#groups tbody'), /no data/, 'the groups table while its route fails')
  await page.unroute(groupsPath)
  await waitFor(async () => !(await page.locator('#groups .error').isVisible()), 'the groups error clears', 15000)
  // Chromium logs the aborted and failed requests above itself: expected until here only. After
  // one more whole refresh nothing may be logged.
  problems.length = 0
  const polls = await page.evaluate(() => Number(document.body.dataset.polls))
  await waitFor(() => page.evaluate(n => Number(document.body.dataset.polls) >= n + 2, polls), 'two more refreshes')
  await waitText(page, `${GROUP} total lag after the errors`, () => cellText(page, 'groups', 'group', GROUP, '.c-lag'),
                 fmt(EXPECTED_LAG))
}

async function main() {
  await waitFor(async () => (await fetch(`${adminBase}/v1/status/ready`)).ok, `${adminBase}/v1/status/ready`, 30000)
  // The kafka plugin's routes answer 503 until every shard started: the page's first poll must not see that.
  await waitFor(async () => (await fetch(`${adminBase}/v1/brokers`)).ok, `${adminBase}/v1/brokers`, 30000)
  let pageBase = adminBase
  let server = null
  if (serveSource) {
    server = await sourceServer()
    pageBase = `http://127.0.0.1:${server.address().port}`
    console.log(`NOTE: --serve-source: the page comes from ${CONSOLE_DIR} via ${pageBase}, proxying to ${adminBase}`)
  } else {
    const res = await fetch(`${adminBase}/`)
    const body = await res.text()
    if (!res.ok || !/<title>Sluice console<\/title>/.test(body)) {
      fail(`${adminBase}/ does not serve the console (HTTP ${res.status}, ${JSON.stringify(body.slice(0, 200))}): ` +
           'is it embedded in the admin_http plugin and `console` not false?')
    }
  }

  await setupKafka()
  const stopLoad = startLoad()

  step(`open ${pageBase}/ in ${CHROMIUM}`)
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
                                          args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] })
  const problems = []
  try {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } })
    const page = await context.newPage()
    page.on('console', m => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`) })
    page.on('pageerror', e => problems.push(`uncaught exception: ${e.message}`))
    page.on('requestfailed', r => problems.push(`request failed: ${r.url()} ${r.failure() && r.failure().errorText}`))
    page.on('response', r => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`) })
    const res = await page.goto(`${pageBase}/`, { waitUntil: 'load' })
    assert.equal(res.status(), 200, `GET ${pageBase}/`)
    await waitFor(() => page.evaluate(() => Number(document.body.dataset.polls || 0) >= 1), 'the first refresh', 15000)
    await checkPage(page, problems)

    fs.mkdirSync(path.dirname(screenshot), { recursive: true })
    await page.screenshot({ path: screenshot, fullPage: true })
    console.log(`screenshot: ${screenshot}`)

    await checkWithoutNewMetrics(page, problems)
    await checkErrorStates(page, problems)
    assert.deepEqual(problems, [], 'the page logged errors')
  } finally {
    await browser.close()
    await stopLoad().catch(() => {})
    await consumer.disconnect().catch(() => {})
    await producer.disconnect().catch(() => {})
    await admin.disconnect().catch(() => {})
    if (server) server.close()
  }
}

main().then(() => {
  console.log('PASSED: console_test')
  process.exit(0)
}, e => {
  console.error(`FAILED: ${e.stack || e.message}`)
  process.exit(1)
})

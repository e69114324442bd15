#!/usr/bin/env node
// kafkajs (pure JavaScript, the version pinned in package-lock.json) against a Sluice broker.
//
//   node tests/clients/kafkajs/kafkajs_test.js [HOST:PORT]      (or $SLUICE_BOOTSTRAP; $KCAT picks kcat)
//
// Admin: describeCluster, createTopics (configs, validateOnly, false when it exists), fetchTopicMetadata,
// describeConfigs, alterConfigs, createPartitions, fetchTopicOffsets, fetchTopicOffsetsByTimestamp,
// deleteTopicRecords, deleteTopics. Producer: acks -1/1/0 without compression and with GZIP (the only codec
// kafkajs has built in; snappy, lz4 and zstd need codec packages this test does not install), keys
// (null, empty, bytes), values (null, empty, binary), duplicate headers, explicit timestamps; the
// baseOffset of every acknowledged batch is checked.
//
// Consuming: every record kafkajs produced is read back byte for byte through kcat (librdkafka,
// assign-style, no group), and then by a kafkajs consumer, which always joins a consumer group (kafkajs has
// no manual partition assignment). SLUICE_GROUPS=0 leaves the kafkajs consumer out, for a broker without
// a group coordinator.
'use strict'

const assert = require('node:assert/strict')
const net = require('node:net')
const { spawnSync } = require('node:child_process')

let kafkajs
try {
  kafkajs = require('kafkajs')
} catch (e) {
  console.error(`FAILED: cannot load kafkajs (${e.message}): run scripts/install-deps.sh ` +
                '(it runs npm ci in tests/clients/kafkajs)')
  process.exit(1)
}
const { Kafka, logLevel, CompressionTypes, ConfigResourceTypes, Partitioners } = kafkajs
const KAFKAJS_VERSION = require('kafkajs/package.json').version

const bootstrap = process.argv.slice(2).find(a => !a.startsWith('-')) || process.env.SLUICE_BOOTSTRAP
if (!bootstrap) {
  console.error('usage: kafkajs_test.js HOST:PORT   (or set SLUICE_BOOTSTRAP)')
  process.exit(2)
}
const brokerId = Number(process.env.SLUICE_BROKER_ID || '1')
const advertised = process.env.SLUICE_ADVERTISED || bootstrap
const KCAT = process.env.KCAT || 'kcat'
const runId = `${process.pid}-${Date.now() % 1e9}`
const topicName = what => `sluice-kafkajs-${what}-${runId}`
const topic = topicName('main')
const PARTITIONS = 3

const kafka = new Kafka({
  clientId: 'sluice-kafkajs-test',
  brokers: [bootstrap],
  logLevel: logLevel.WARN,
  connectionTimeout: 10000,
  requestTimeout: 60000,
  retry: { retries: 3 },
})

// Deterministic bytes (mulberry32), so a failure reproduces.
function rng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
function randomBytes(r, n) {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256)
  return b
}

// Every comparison says what it got and what it wanted (a custom message replaces node's own).
const fmt = v => (Buffer.isBuffer(v) ? showBuf(v) : JSON.stringify(v))
function eq(got, want, what) {
  assert.deepStrictEqual(got, want, `${what}: got ${fmt(got)}, want ${fmt(want)}`)
}

const showBuf = b => (b === null || b === undefined ? 'null'
  : `${b.length} bytes${b.length <= 32 ? ` ${JSON.stringify(b.toString('latin1'))}` : ''}`)
function checkBytes(got, want, what) {
  if (want === null) {
    assert.ok(got === null || got === undefined, `${what}: got ${showBuf(got)}, want null`)
    return
  }
  assert.ok(got !== null && got !== undefined, `${what}: got null, want ${showBuf(want)}`)
  if (!Buffer.from(got).equals(want)) {
    let i = 0
    while (i < got.length && i < want.length && got[i] === want[i]) i++
    assert.fail(`${what}: got ${showBuf(got)}, want ${showBuf(want)}; first difference at byte ${i}`)
  }
}

function reachable() {
  const i = bootstrap.lastIndexOf(':')
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: bootstrap.slice(0, i), port: Number(bootstrap.slice(i + 1)) })
    s.setTimeout(10000)
    s.on('connect', () => { s.destroy(); resolve() })
    s.on('timeout', () => { s.destroy(); reject(new Error('connection timed out')) })
    s.on('error', reject)
  }).catch(e => {
    throw new Error(`cannot connect to the broker at ${bootstrap}: ${e.message} -- is brokerd running with the ` +
                    'kafka plugin listening there? (tests/clients/run_with_broker.py starts one)')
  })
}

async function waitFor(pred, what, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await pred()
    if (v) return v
    if (Date.now() > deadline) assert.fail(`${what}: not true after ${timeoutMs / 1000} s`)
    await new Promise(r => setTimeout(r, 200))
  }
}

// Known, documented deviations of the broker, listed per test by tests/clients/CMakeLists.txt; a listed gap
// tolerates exactly its own symptom and is reported (see clientlib.py for the Python tests).
const KNOWN_GAPS = new Set((process.env.SLUICE_CLIENTS_KNOWN_GAPS || '').split(',').filter(Boolean))
const GAP_TS_COMPRESSED = 'timestamp-in-compressed-batch'
const gapsSeen = new Map()
function knownGap(gap, msg) {
  if (!KNOWN_GAPS.has(gap)) return false
  const n = gapsSeen.get(gap) || 0
  gapsSeen.set(gap, n + 1)
  if (n < 3) console.log(`   KNOWN GAP ${gap}: ${msg}`)
  return true
}

const admin = kafka.admin()
const state = { byPartition: new Map() } // partition -> records in offset order
const skipped = []

async function stepCluster() {
  await reachable()
  await admin.connect()
  const c = await admin.describeCluster()
  eq(c.brokers.map(b => [b.nodeId, `${b.host}:${b.port}`]), [[brokerId, advertised]],
                   'brokers (id, advertised host:port)')
  eq(c.controller, brokerId, 'controller id')
  assert.ok(typeof c.clusterId === 'string' && c.clusterId.length > 0, `cluster id: ${c.clusterId}`)
  return `kafkajs ${KAFKAJS_VERSION}, cluster ${c.clusterId}`
}

function partitionsReady(md, n) {
  const t = md.topics.find(x => x.name === topic)
  return t && t.partitions.length === n &&
         t.partitions.every(p => p.partitionErrorCode === 0 && p.leader === brokerId)
}

async function stepCreateTopics() {
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1,
               configEntries: [{ name: 'retention.ms', value: '3600000' }] }],
    waitForLeaders: true, timeout: 30000,
  })
  eq(created, true, 'createTopics returns true for a new topic')
  eq(await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: false }),
               false, 'createTopics returns false when the topic exists (TOPIC_ALREADY_EXISTS)')
  const never = topicName('validate-only')
  await admin.createTopics({ topics: [{ topic: never, numPartitions: 1 }], validateOnly: true, waitForLeaders: false })
  assert.ok(!(await admin.listTopics()).includes(never), `validateOnly created ${never}`)

  const md = await waitFor(async () => {
    const m = await admin.fetchTopicMetadata({ topics: [topic] })
    return partitionsReady(m, PARTITIONS) && m
  }, `${topic} with ${PARTITIONS} partitions led by broker ${brokerId}`)
  for (const p of md.topics[0].partitions) {
    eq([p.replicas, p.isr], [[brokerId], [brokerId]], `${topic}[${p.partitionId}] replicas, isr`)
  }
}

async function topicConfig(name) {
  const d = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name }],
                                          includeSynonyms: false })
  eq(d.resources.length, 1, 'describeConfigs resources')
  eq(d.resources[0].errorCode, 0, `describeConfigs error: ${d.resources[0].errorMessage}`)
  return Object.fromEntries(d.resources[0].configEntries.map(e => [e.configName, e.configValue]))
}

async function stepConfigs() {
  const cfg = await topicConfig(topic)
  eq(cfg['retention.ms'], '3600000', 'retention.ms')
  eq(cfg['cleanup.policy'], 'delete', 'cleanup.policy')
  await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic,
                                                                configEntries: [{ name: 'retention.ms',
                                                                                  value: '7200000' }] }] })
  eq((await topicConfig(topic))['retention.ms'], '7200000', 'retention.ms after alterConfigs')
}

async function stepCreatePartitions() {
  await admin.createPartitions({ topicPartitions: [{ topic, count: PARTITIONS + 1 }], timeout: 30000 })
  await waitFor(async () => partitionsReady(await admin.fetchTopicMetadata({ topics: [topic] }), PARTITIONS + 1),
                `${topic} with ${PARTITIONS + 1} partitions`)
  await assert.rejects(admin.createPartitions({ topicPartitions: [{ topic, count: 2 }] }),
                       e => /INVALID_PARTITIONS|partition/i.test(`${e.type} ${e.message}`),
                       'shrinking the partition count must fail with INVALID_PARTITIONS')
}

function makeRecords(tag, n, firstTs, seed) {
  const r = rng(seed)
  const recs = []
  for (let i = 0; i < n; i++) {
    const key = i % 40 === 0 ? null : i % 40 === 1 ? Buffer.alloc(0) : Buffer.concat([Buffer.from(`${tag}-${i}-`),
                                                                                         randomBytes(r, i % 9)])
    let value
    if (i % 97 === 5) value = null
    else if (i % 10 === 0) value = Buffer.alloc(0)
    else if (i % 150 === 7) value = randomBytes(r, 100000 + Math.floor(r() * 100000))
    else value = randomBytes(r, 1 + Math.floor(r() * 3000))
    // ASCII header values, so kcat's "%h" output (name=value,...) can be compared exactly.
    const headers = i % 5 === 0 ? {} : { seq: `${i}`, dup: ['a', 'b'], empty: '' }
    recs.push({ label: `${tag}#${i}`, key, value, headers, ts: firstTs + i, partition: i % (PARTITIONS + 1) })
  }
  return recs
}

function headersAsKcatPrints(h) {
  const parts = []
  for (const [k, v] of Object.entries(h)) for (const x of Array.isArray(v) ? v : [v]) parts.push(`${k}=${x}`)
  return parts.join(',')
}

async function stepProduce() {
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false, maxInFlightRequests: 1,
                                    createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  let ts = Date.now() - 10 * 60 * 1000
  let total = 0
  for (const compression of [CompressionTypes.None, CompressionTypes.GZIP]) {
    for (const acks of [-1, 1, 0]) {
      const tag = `c${compression}-acks${acks}`
      const recs = makeRecords(tag, 300, ts, 1000 + compression * 10 + acks)
      ts += recs.length
      // Several sends per run: each send() is one Produce request with one batch per partition.
      for (let from = 0; from < recs.length; from += 100) {
        const chunk = recs.slice(from, from + 100)
        const expectedBase = new Map()
        for (const r of chunk) {
          const list = state.byPartition.get(r.partition) || []
          state.byPartition.set(r.partition, list)
          if (!expectedBase.has(r.partition)) expectedBase.set(r.partition, list.length)
          r.offset = list.length
          list.push(r)
        }
        const meta = await producer.send({
          topic, acks, compression, timeout: 30000,
          messages: chunk.map(r => ({ key: r.key, value: r.value, headers: r.headers, partition: r.partition,
                                      timestamp: String(r.ts) })),
        })
        if (acks === 0) {
          eq(meta, [], 'acks=0: no response, no record metadata')
          continue
        }
        eq(meta.length, expectedBase.size, `${tag}: one result per partition`)
        for (const m of meta) {
          eq(m.errorCode, 0, `${tag}: produce error ${m.errorCode} on partition ${m.partition}`)
          eq(m.topicName, topic)
          eq(Number(m.baseOffset), expectedBase.get(m.partition),
                       `${tag}: baseOffset of the batch for partition ${m.partition}`)
        }
      }
      total += recs.length
      if (acks === 0) await waitForHighWatermarks()
    }
  }
  await producer.disconnect()
  return `${total} records`
}

// acks=0 has no acknowledgement: poll the offsets until every record sent is in the log.
async function waitForHighWatermarks() {
  await waitFor(async () => {
    const offs = await admin.fetchTopicOffsets(topic)
    return offs.every(o => Number(o.high) === (state.byPartition.get(o.partition) || []).length)
  }, 'high watermarks counting every record sent with acks=0', 60000)
}

async function stepOffsets() {
  const offs = await admin.fetchTopicOffsets(topic)
  eq(offs.map(o => [o.partition, Number(o.low), Number(o.high), Number(o.offset)]).sort(),
                   [...Array(PARTITIONS + 1).keys()].map(p => {
                     const n = (state.byPartition.get(p) || []).length
                     return [p, 0, n, n]
                   }).sort(), 'fetchTopicOffsets (partition, low, high, offset)')
  // fetchTopicOffsetsByTimestamp: per partition the earliest offset whose timestamp is >= T; where no record
  // is that late, kafkajs substitutes the high watermark for the broker's -1.
  const all = [...state.byPartition.values()].flat()
  const probes = [all[0].ts - 3600000, all[0].ts, all[17].ts, all[Math.floor(all.length / 2)].ts,
                  all[all.length - 1].ts, all[all.length - 1].ts + 1]
  for (const t of probes) {
    const got = await admin.fetchTopicOffsetsByTimestamp(topic, t)
    for (const { partition, offset } of got) {
      const recs = state.byPartition.get(partition) || []
      const idx = recs.findIndex(r => r.ts >= t)
      const want = idx === -1 ? recs.length : idx
      const what = `fetchTopicOffsetsByTimestamp(${t}) for partition ${partition}`
      // Kafka finds the record inside compressed (GZIP) batches too; a compressed batch's first offset is
      // tolerated only under the known gap.
      if (Number(offset) >= 0 && Number(offset) < want &&
          knownGap(GAP_TS_COMPRESSED, `${what}: got ${offset}, want ${want}: a compressed batch's first offset`)) {
        continue
      }
      eq(Number(offset), want, what)
    }
  }
}

// Reads a partition with kcat (librdkafka, no consumer group) and returns the parsed messages.
function kcatConsume(partition) {
  const p = spawnSync(KCAT, ['-b', bootstrap, '-F', 'none', '-C', '-t', topic, '-p', String(partition),
                             '-o', 'beginning', '-e', '-f', '%o %T %K %S %h\\n%k%s\\n'],
                      { maxBuffer: 1 << 30, timeout: 120000, env: { ...process.env, KCAT_CONFIG: '' } })
  if (p.error) assert.fail(`cannot run ${KCAT}: ${p.error.message}`)
  eq(p.status, 0, `kcat exited with ${p.status}: ${p.stderr}`)
  const out = p.stdout
  const msgs = []
  let pos = 0
  while (pos < out.length) {
    const nl = out.indexOf(0x0a, pos)
    assert.ok(nl >= 0, 'truncated kcat output')
    const line = out.subarray(pos, nl).toString('latin1')
    const m = /^(\d+) (-?\d+) (-?\d+) (-?\d+) ?(.*)$/.exec(line)
    assert.ok(m, `unexpected kcat line ${JSON.stringify(line)}`)
    const [klen, vlen] = [Number(m[3]), Number(m[4])]
    pos = nl + 1
    const key = klen < 0 ? null : out.subarray(pos, pos + klen)
    pos += Math.max(klen, 0)
    const value = vlen < 0 ? null : out.subarray(pos, pos + vlen)
    pos += Math.max(vlen, 0)
    eq(out[pos], 0x0a, 'kcat record terminator')
    pos += 1
    msgs.push({ offset: Number(m[1]), ts: Number(m[2]), headers: m[5], key, value })
  }
  return msgs
}

function checkMessages(partition, msgs, recs, what) {
  eq(msgs.length, recs.length, `${what}: messages in partition ${partition}`)
  msgs.forEach((m, i) => {
    const r = recs[i]
    const at = `${topic}[${partition}]@${m.offset} (${r.label})`
    eq(m.offset, r.offset, `${at}: offset`)
    eq(m.ts, r.ts, `${at}: timestamp`)
    checkBytes(m.key, r.key, `${at}: key`)
    checkBytes(m.value, r.value, `${at}: value`)
    eq(m.headers, headersAsKcatPrints(r.headers), `${at}: headers`)
  })
}

async function stepVerifyWithKcat() {
  let n = 0
  for (const [partition, recs] of state.byPartition) {
    checkMessages(partition, kcatConsume(partition), recs, 'read back with kcat')
    n += recs.length
  }
  return `${n} records read back byte for byte`
}

async function stepDeleteRecords() {
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '100' }] })
  const offs = await admin.fetchTopicOffsets(topic)
  const p0 = offs.find(o => o.partition === 0)
  const recs = state.byPartition.get(0)
  eq([Number(p0.low), Number(p0.high)], [100, recs.length], 'partition 0 offsets after deleteTopicRecords')
  checkMessages(0, kcatConsume(0), recs.slice(100), 'after deleteTopicRecords')
  state.byPartition.set(0, recs.slice(100))
}

async function stepConsumerGroup() {
  if (process.env.SLUICE_GROUPS === '0') {
    const msg = 'SKIPPED kafkajs consumer: SLUICE_GROUPS=0 (a kafkajs consumer needs consumer groups: no manual ' +
                'assignment in kafkajs)'
    skipped.push(msg)
    console.log(`   ${msg}`)
    return 'skipped'
  }
  const want = new Map([...state.byPartition].map(([p, recs]) => [p, recs]))
  const pos = new Map([...want.keys()].map(p => [p, 0]))
  const total = [...want.values()].reduce((a, v) => a + v.length, 0)
  let seen = 0
  const consumer = kafka.consumer({ groupId: topicName('group'), maxWaitTimeInMs: 100 })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  let fail = null
  let finish
  const done = new Promise(resolve => { finish = resolve })
  // A consumer that cannot join (no coordinator, a rejected JoinGroup) crashes; fail then, not at the timeout.
  consumer.on(consumer.events.CRASH, e => {
    fail = fail || new Error(`kafkajs consumer crashed: ${e.payload.error && e.payload.error.message}`)
    finish()
  })
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      try {
        const recs = want.get(partition)
        const r = recs[pos.get(partition)]
        assert.ok(r, `more messages than produced in partition ${partition}`)
        const at = `${topic}[${partition}]@${message.offset} (${r.label})`
        eq(Number(message.offset), r.offset, `${at}: offset`)
        eq(Number(message.timestamp), r.ts, `${at}: timestamp`)
        checkBytes(message.key, r.key, `${at}: key`)
        checkBytes(message.value, r.value, `${at}: value`)
        const h = Object.fromEntries(Object.entries(message.headers || {}).map(([k, v]) =>
          [k, Array.isArray(v) ? v.map(x => x.toString()) : v.toString()]))
        eq(h, r.headers, `${at}: headers`)
        pos.set(partition, pos.get(partition) + 1)
        if (++seen === total) finish()
      } catch (e) {
        fail = fail || e
        finish()
      }
    },
  })
  const timer = setTimeout(() => { fail = fail || new Error(`consumed ${seen} of ${total} within 120 s`); finish() },
                           120000)
  await done
  clearTimeout(timer)
  await consumer.disconnect()
  if (fail) throw fail
  return `${seen} records through a consumer group`
}

async function stepDeleteTopics() {
  await admin.deleteTopics({ topics: [topic], timeout: 30000 })
  await waitFor(async () => !(await admin.listTopics()).includes(topic), `deletion of ${topic}`)
}

async function main() {
  const steps = [
    ['the broker is reachable; describeCluster', stepCluster],
    ['createTopics, validateOnly, fetchTopicMetadata', stepCreateTopics],
    ['describeConfigs and alterConfigs', stepConfigs],
    ['createPartitions', stepCreatePartitions],
    ['produce with acks -1/1/0, no compression and GZIP', stepProduce],
    ['fetchTopicOffsets and fetchTopicOffsetsByTimestamp', stepOffsets],
    ['every record read back with kcat', stepVerifyWithKcat],
    ['deleteTopicRecords', stepDeleteRecords],
    ['a kafkajs consumer group reads everything', stepConsumerGroup],
    ['deleteTopics', stepDeleteTopics],
  ]
  const t0 = Date.now()
  let passed = 0
  for (const [title, fn] of steps) {
    console.log(`== kafkajs: ${title}`)
    const t = Date.now()
    try {
      const note = await fn()
      console.log(`   ok in ${((Date.now() - t) / 1000).toFixed(1)} s${note ? ` (${note})` : ''}`)
      passed++
    } catch (e) {
      console.error(`FAILED: kafkajs: ${title}: ${e && e.stack ? e.stack : e}`)
      console.log(`${passed} passed, 1 failed`)
      await admin.disconnect().catch(() => {})
      return 1
    }
  }
  await admin.disconnect()
  for (const s of skipped) console.log(s)
  for (const gap of [...KNOWN_GAPS].sort()) {
    console.log(gapsSeen.has(gap)
      ? `KNOWN GAP ${gap}: tolerated ${gapsSeen.get(gap)} time(s) (SLUICE_CLIENTS_KNOWN_GAPS)`
      : `NOTE: known gap ${gap} was not observed in this run; if the broker fixed it, remove it from ` +
        'SLUICE_CLIENTS_KNOWN_GAPS for this test in tests/clients/CMakeLists.txt')
  }
  console.log(`kafkajs: all ${passed} steps passed in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  console.log(`${passed} passed, 0 failed`)
  return 0
}

main().then(code => process.exit(code), e => { console.error(e); process.exit(1) })

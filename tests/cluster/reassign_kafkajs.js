#!/usr/bin/env node
// kafkajs's AlterPartitionReassignments and ListPartitionReassignments (KIP-455) against a cluster:
// moves one partition to the given brokers, watches the move in ListPartitionReassignments (replicas,
// adding, removing) until it is gone, then checks the partition's replicas in Metadata.
//
//   node tests/cluster/reassign_kafkajs.js HOST:PORT[,HOST:PORT...] TOPIC PARTITION BROKER,BROKER,...
//
// Prints one JSON line with what it saw; exits non-zero on a failed check. moves_test.py runs it.
'use strict'

const assert = require('node:assert/strict')
const path = require('node:path')

let kafkajs
try {
  kafkajs = require(path.join(__dirname, '..', 'clients', 'kafkajs', 'node_modules', 'kafkajs'))
} catch (e) {
  console.error(`FAILED: cannot load kafkajs (${e.message}): run scripts/install-deps.sh`)
  process.exit(1)
}
const { Kafka, logLevel } = kafkajs

async function main () {
  const [bootstrap, topic, partitionArg, replicasArg] = process.argv.slice(2)
  if (!replicasArg) {
    console.error('usage: reassign_kafkajs.js BOOTSTRAP TOPIC PARTITION BROKER,BROKER,...')
    process.exit(2)
  }
  const partition = Number(partitionArg)
  const replicas = replicasArg.split(',').map(Number)
  const kafka = new Kafka({ clientId: 'sluice-reassign', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  try {
    // A partition that does not exist is refused per partition.
    let refused = null
    try {
      await admin.alterPartitionReassignments({ topics: [{ topic, partitionAssignment: [{ partition: 999, replicas }] }] })
    } catch (e) {
      refused = e
    }
    const types = refused ? (refused.errors || [refused]).map(x => x.type || x.name || String(x)) : []
    assert.ok(types.includes('UNKNOWN_TOPIC_OR_PARTITION'),
      `a move of a missing partition is refused with UNKNOWN_TOPIC_OR_PARTITION (got ${refused ? refused.stack : 'success'}: ${types})`)

    await admin.alterPartitionReassignments({ topics: [{ topic, partitionAssignment: [{ partition, replicas }] }] })
    const seen = []
    const deadline = Date.now() + 90000
    for (;;) {
      const { topics } = await admin.listPartitionReassignments({ topics: [{ topic, partitions: [partition] }] })
      const ongoing = topics.flatMap(t => t.partitions.map(p => ({ topic: t.topic, ...p })))
      if (ongoing.length === 0) break
      for (const p of ongoing) {
        assert.equal(p.partition, partition)
        // Replicas list the assignment plus those leaving; adding and removing are the differences.
        for (const r of replicas) assert.ok(p.replicas.includes(r), `replicas ${p.replicas} include ${r}`)
        for (const r of p.addingReplicas) assert.ok(replicas.includes(r), `adding ${r} is assigned`)
        for (const r of p.removingReplicas) assert.ok(!replicas.includes(r), `removing ${r} is not assigned`)
        seen.push(p)
      }
      assert.ok(Date.now() < deadline, 'the move finishes within 90 s')
      await new Promise(resolve => setTimeout(resolve, 200))
    }
    const md = await admin.fetchTopicMetadata({ topics: [topic] })
    const pm = md.topics[0].partitions.find(p => p.partitionId === partition)
    assert.deepEqual([...pm.replicas].sort(), [...replicas].sort(), 'Metadata lists the new replicas')
    console.log(JSON.stringify({ ok: true, replicas: pm.replicas, listed_while_moving: seen.length }))
  } finally {
    await admin.disconnect()
  }
}

main().catch(e => {
  console.error(`FAILED: ${e.stack || e}`)
  process.exit(1)
})

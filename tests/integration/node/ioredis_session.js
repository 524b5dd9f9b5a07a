'use strict';
// A short, realistic ioredis session against 127.0.0.1:PORT (corral, or redis-server itself).
//
//   node ioredis_session.js PORT
//
// Prints one line per check ("ok   name: detail"); exits 0 only when every check held, 1 with
// "FAIL name: why" on the first failed check, 2 when a step or the whole run times out.
// Run by ../test_node_clients.py; works on Node 18 and later.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const Redis = require('ioredis');

const { startSession, sleep, BUCKET } = require('./session_common');

const session = startSession('ioredis');
const { port, P, clientErrors, check } = session;
const clients = [];

function client(opts = {}) {
  const r = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    connectTimeout: 5000,
    commandTimeout: 4000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null, // a dropped connection fails the run instead of retrying
    enableReadyCheck: true, // the default: INFO before 'ready'
    ...opts,
  });
  r.on('error', (e) => clientErrors.push(`${opts.connectionName || 'client'}: ${e.message}`));
  clients.push(r);
  return r;
}


async function main() {
  const r = client({ connectionName: 'it-ioredis-main' });
  const other = client({ connectionName: 'it-ioredis-other' });

  await check('connect', async () => {
    // connect() resolves after ioredis's own startup: CLIENT SETNAME, CLIENT SETINFO, INFO.
    await Promise.all([r.connect(), other.connect()]);
    assert.equal(r.status, 'ready');
    assert.equal(other.status, 'ready');
    assert.equal(await r.ping(), 'PONG');
    assert.equal(await r.client('GETNAME'), 'it-ioredis-main');
    const info = await r.info('server');
    assert.match(info, /^redis_version:\d+\./m);
    return `ready; redis ${info.match(/^redis_version:(\S+)/m)[1]}, ioredis ${require('ioredis/package.json').version}`;
  });

  await check('set/get/incr/mget', async () => {
    assert.equal(await r.set(P + 's', 'hello'), 'OK');
    assert.equal(await r.get(P + 's'), 'hello');
    assert.equal(await r.incr(P + 'n'), 1);
    assert.equal(await r.incrby(P + 'n', 41), 42);
    assert.deepEqual(await r.mget(P + 's', P + 'n', P + 'missing'), ['hello', '42', null]);
    assert.equal(await r.get(P + 'missing'), null);
  });

  await check('hset/hgetall', async () => {
    assert.equal(await r.hset(P + 'h', { f1: '1', f2: 'two', f3: 'drei' }), 3);
    assert.equal(await r.hset(P + 'h', 'f1', 'one'), 0);
    assert.deepEqual(await r.hgetall(P + 'h'), { f1: 'one', f2: 'two', f3: 'drei' });
    assert.deepEqual(await r.hgetall(P + 'missing'), {});
  });

  await check('expire/ttl', async () => {
    assert.equal(await r.expire(P + 'h', 100), 1);
    const ttl = await r.ttl(P + 'h');
    assert.ok(ttl >= 95 && ttl <= 100, `ttl ${ttl}`);
    assert.equal(await r.ttl(P + 's'), -1);
    assert.equal(await r.ttl(P + 'missing'), -2);
    assert.equal(await r.expire(P + 'missing', 100), 0);
    return `ttl ${ttl}`;
  });

  await check('del', async () => {
    assert.equal(await r.del(P + 's', P + 'n', P + 'missing'), 2);
    assert.equal(await r.exists(P + 's', P + 'n'), 0);
  });

  await check('scan', async () => {
    const want = new Set();
    const p = r.pipeline();
    for (let i = 0; i < 150; i++) {
      want.add(`${P}scan:${i}`);
      p.set(`${P}scan:${i}`, i);
    }
    await p.exec();
    const found = new Set();
    let batches = 0;
    await new Promise((resolve, reject) => {
      r.scanStream({ match: `${P}scan:*`, count: 20 })
        .on('data', (keys) => {
          batches++;
          keys.forEach((k) => found.add(k));
        })
        .on('error', reject)
        .on('end', resolve);
    });
    assert.deepEqual([...found].sort(), [...want].sort());
    assert.ok(batches > 1, `only ${batches} SCAN round(s)`);
    assert.equal(await r.del(...found), 150);
    return `${found.size} keys in ${batches} SCAN rounds`;
  });

  await check('pipeline of 100', async () => {
    // SET k_i, GET k_i, INCR counter, repeated: each reply depends on the ones before it.
    const p = r.pipeline();
    const want = [];
    for (let i = 0; i < 100; i++) {
      const k = `${P}pipe:${i - (i % 3)}`;
      if (i % 3 === 0) {
        p.set(k, `v${i}`);
        want.push('OK');
      } else if (i % 3 === 1) {
        p.get(k);
        want.push(`v${i - 1}`);
      } else {
        p.incr(P + 'pipe:ctr');
        want.push((i + 1) / 3);
      }
    }
    assert.equal(p.length, 100);
    const res = await p.exec();
    assert.equal(res.length, 100);
    res.forEach(([err], i) => assert.equal(err, null, `command ${i}: ${err}`));
    assert.deepEqual(res.map(([, v]) => v), want);
    assert.equal(await r.get(P + 'pipe:ctr'), '33');
    return '100 replies in order';
  });

  await check('multi/exec', async () => {
    const res = await r.multi().set(P + 'tx', '1').incr(P + 'tx').get(P + 'tx').exec();
    assert.deepEqual(res, [[null, 'OK'], [null, 2], [null, '2']]);
    // a command error inside EXEC is reported per command, the others still apply
    const res2 = await r.multi().lpush(P + 'tx', 'x').incr(P + 'tx').exec();
    assert.match(String(res2[0][0]), /WRONGTYPE/);
    assert.deepEqual(res2[1], [null, 3]);
  });

  await check('watch: untouched key commits', async () => {
    assert.equal(await r.watch(P + 'w'), 'OK');
    assert.equal(await r.get(P + 'w'), null);
    const res = await r.multi().set(P + 'w', 'first').exec();
    assert.deepEqual(res, [[null, 'OK']]);
  });

  await check('watch: conflicting write aborts exec', async () => {
    assert.equal(await r.watch(P + 'w'), 'OK');
    assert.equal(await r.get(P + 'w'), 'first');
    assert.equal(await other.set(P + 'w', 'theirs'), 'OK'); // from the second connection
    const res = await r.multi().set(P + 'w', 'mine').exec();
    assert.equal(res, null, `EXEC after a conflicting write returned ${JSON.stringify(res)}`);
    assert.equal(await r.get(P + 'w'), 'theirs');
    return 'exec() resolved to null';
  });

  await check('blpop with a producer 200 ms later', async () => {
    const consumer = client({ connectionName: 'it-ioredis-consumer', commandTimeout: undefined });
    await consumer.connect();
    const t0 = Date.now();
    const popped = consumer.blpop(P + 'queue', 5);
    await sleep(200);
    assert.equal(await other.rpush(P + 'queue', 'job-1'), 1);
    assert.deepEqual(await popped, [P + 'queue', 'job-1']);
    const waited = Date.now() - t0;
    assert.ok(waited >= 180, `BLPOP returned after ${waited} ms, before the push`);
    // an empty list times out with nil
    const t1 = Date.now();
    assert.equal(await consumer.blpop(P + 'queue', 0.2), null);
    const timedOut = Date.now() - t1;
    assert.ok(timedOut >= 150, `BLPOP 0.2 returned after ${timedOut} ms`);
    await consumer.quit();
    return `popped after ${waited} ms; empty BLPOP 0.2 -> nil after ${timedOut} ms`;
  });

  await check('pub/sub: subscriber receives in order, unsubscribe', async () => {
    const sub = client({ connectionName: 'it-ioredis-sub', commandTimeout: undefined });
    await sub.connect();
    const got = [];
    sub.on('message', (ch, msg) => got.push(`${ch}:${msg}`));
    assert.equal(await sub.subscribe(P + 'ch'), 1);
    for (let i = 0; i < 5; i++) assert.equal(await other.publish(P + 'ch', `m${i}`), 1);
    for (let t = 0; t < 100 && got.length < 5; t++) await sleep(20);
    assert.deepEqual(got, [0, 1, 2, 3, 4].map((i) => `${P}ch:m${i}`));
    assert.equal(await sub.unsubscribe(P + 'ch'), 0);
    // out of subscriber mode the same connection runs commands again
    assert.equal(await sub.ping(), 'PONG');
    await sub.quit();
    return `${got.length} messages, then PING on the same connection`;
  });

  await check('eval (token bucket, 2 keys)', async () => {
    const keys = [P + 'bucket:tokens', P + 'bucket:ts'];
    const now = 1700000000000;
    const got = [];
    for (let i = 0; i < 6; i++) got.push(await r.eval(BUCKET, 2, ...keys, 5, 1, now, 1));
    assert.deepEqual(got, [[1, 4], [1, 3], [1, 2], [1, 1], [1, 0], [0, 0]]);
    assert.deepEqual(await r.eval(BUCKET, 2, ...keys, 5, 1, now + 2000, 1), [1, 1]);
    assert.equal(await r.get(keys[0]), '1');
    return '5 allowed, 6th refused, refill after 2 s';
  });

  await check('script load/evalsha', async () => {
    const keys = [P + 'bucket:tokens', P + 'bucket:ts'];
    const sha = await r.script('LOAD', BUCKET);
    assert.equal(sha, crypto.createHash('sha1').update(BUCKET).digest('hex'));
    assert.deepEqual(await r.script('EXISTS', sha), [1]);
    assert.deepEqual(await r.evalsha(sha, 2, ...keys, 5, 1, 1700000002000, 2), [0, 1]);
    assert.deepEqual(await r.evalsha(sha, 2, ...keys, 5, 1, 1700000003000, 2), [1, 0]);
    await assert.rejects(r.evalsha('0'.repeat(40), 0), /NOSCRIPT/);
    return `sha ${sha.slice(0, 12)}...`;
  });

  await check('select db 3', async () => {
    const db3 = client({ connectionName: 'it-ioredis-db3', db: 3 });
    await db3.connect();
    assert.equal(await db3.set(P + 'db', 'in-db-3'), 'OK');
    assert.equal(await db3.get(P + 'db'), 'in-db-3');
    assert.equal(await r.get(P + 'db'), null, 'a db-0 client sees the db-3 key');
    assert.equal(await r.exists(P + 'db'), 0);
    assert.equal(await r.set(P + 'db', 'in-db-0'), 'OK');
    assert.equal(await db3.get(P + 'db'), 'in-db-3');
    assert.equal(await db3.del(P + 'db'), 1);
    await db3.quit();
  });

  await check('cleanup and quit', async () => {
    const left = [];
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', P + '*', 'COUNT', 100);
      cursor = next;
      left.push(...keys);
    } while (cursor !== '0');
    if (left.length) await r.del(...left);
    assert.equal(await r.quit(), 'OK');
    assert.equal(await other.quit(), 'OK');
    assert.deepEqual(clientErrors, [], 'error events on the clients');
  });

  clearTimeout(session.total);
  console.log(`ioredis session: all ${session.passed} checks passed`);
}

main().catch((e) => {
  console.error(`FAIL: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});

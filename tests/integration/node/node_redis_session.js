'use strict';
// A short, realistic node-redis (npm `redis`, v4) session against 127.0.0.1:PORT (corral, or
// redis-server itself).
//
//   node node_redis_session.js PORT
//
// Prints one line per check ("ok   name: detail"); exits 0 only when every check held, 1 with
// "FAIL name: why" on the first failed check, 2 when a step or the whole run times out.
// Run by ../test_node_clients.py; works on Node 18 and later.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { createClient, WatchError, MultiErrorReply } = require('redis');

const { startSession, sleep, BUCKET } = require('./session_common');

const session = startSession('node-redis');
const { port, P, clientErrors, check } = session;

function client(opts = {}) {
  const c = createClient({
    socket: {
      host: '127.0.0.1',
      port,
      connectTimeout: 5000,
      reconnectStrategy: false, // a dropped connection fails the run instead of retrying
    },
    ...opts,
  });
  c.on('error', (e) => clientErrors.push(`${opts.name || 'client'}: ${e.message}`));
  return c;
}


const bucketArgs = (now, want) => ['5', '1', String(now), String(want)];

async function main() {
  const c = client({ name: 'it-node-redis-main' });
  const other = client({ name: 'it-node-redis-other' });

  await check('connect', async () => {
    // connect() resolves after node-redis's own startup: CLIENT SETINFO, CLIENT SETNAME.
    await Promise.all([c.connect(), other.connect()]);
    assert.ok(c.isReady && other.isReady, 'clients not ready');
    assert.equal(await c.ping(), 'PONG');
    assert.equal(await c.clientGetName(), 'it-node-redis-main');
    const info = await c.info('server');
    assert.match(info, /^redis_version:\d+\./m);
    return `ready; redis ${info.match(/^redis_version:(\S+)/m)[1]}, redis (node-redis) ` +
      `${require('redis/package.json').version}`;
  });

  await check('set/get/incr/mget', async () => {
    assert.equal(await c.set(P + 's', 'hello'), 'OK');
    assert.equal(await c.get(P + 's'), 'hello');
    assert.equal(await c.incr(P + 'n'), 1);
    assert.equal(await c.incrBy(P + 'n', 41), 42);
    assert.deepEqual(await c.mGet([P + 's', P + 'n', P + 'missing']), ['hello', '42', null]);
    assert.equal(await c.get(P + 'missing'), null);
  });

  await check('hset/hgetall', async () => {
    assert.equal(await c.hSet(P + 'h', { f1: '1', f2: 'two', f3: 'drei' }), 3);
    assert.equal(await c.hSet(P + 'h', 'f1', 'one'), 0);
    // hGetAll returns a prototype-less object: compare its own entries
    assert.deepEqual({ ...(await c.hGetAll(P + 'h')) }, { f1: 'one', f2: 'two', f3: 'drei' });
    assert.deepEqual({ ...(await c.hGetAll(P + 'missing')) }, {});
  });

  await check('expire/ttl', async () => {
    assert.equal(await c.expire(P + 'h', 100), true);
    const ttl = await c.ttl(P + 'h');
    assert.ok(ttl >= 95 && ttl <= 100, `ttl ${ttl}`);
    assert.equal(await c.ttl(P + 's'), -1);
    assert.equal(await c.ttl(P + 'missing'), -2);
    assert.equal(await c.expire(P + 'missing', 100), false);
    return `ttl ${ttl}`;
  });

  await check('del', async () => {
    assert.equal(await c.del([P + 's', P + 'n', P + 'missing']), 2);
    assert.equal(await c.exists([P + 's', P + 'n']), 0);
  });

  await check('scan', async () => {
    const want = new Set();
    const m = c.multi();
    for (let i = 0; i < 150; i++) {
      want.add(`${P}scan:${i}`);
      m.set(`${P}scan:${i}`, String(i));
    }
    await m.execAsPipeline();
    // scanIterator yields keys; count the SCAN rounds by following the cursor ourselves too
    const found = new Set();
    for await (const k of c.scanIterator({ MATCH: `${P}scan:*`, COUNT: 20 })) found.add(k);
    assert.deepEqual([...found].sort(), [...want].sort());
    let rounds = 0;
    let cursor = 0;
    do {
      ({ cursor } = await c.scan(cursor, { MATCH: `${P}scan:*`, COUNT: 20 }));
      rounds++;
    } while (cursor !== 0 && rounds < 1000);
    assert.ok(rounds > 1, `only ${rounds} SCAN round(s)`);
    assert.equal(await c.del([...found]), 150);
    return `${found.size} keys in ${rounds} SCAN rounds`;
  });

  await check('pipeline of 100', async () => {
    // SET k_i, GET k_i, INCR counter, repeated: each reply depends on the ones before it.
    const m = c.multi();
    const want = [];
    for (let i = 0; i < 100; i++) {
      const k = `${P}pipe:${i - (i % 3)}`;
      if (i % 3 === 0) {
        m.set(k, `v${i}`);
        want.push('OK');
      } else if (i % 3 === 1) {
        m.get(k);
        want.push(`v${i - 1}`);
      } else {
        m.incr(P + 'pipe:ctr');
        want.push((i + 1) / 3);
      }
    }
    assert.deepEqual(await m.execAsPipeline(), want);
    assert.equal(await c.get(P + 'pipe:ctr'), '33');
    // node-redis also pipelines concurrent commands on one connection by itself
    const auto = await Promise.all(Array.from({ length: 100 }, () => c.incr(P + 'pipe:auto')));
    assert.deepEqual(auto, Array.from({ length: 100 }, (_, i) => i + 1));
    return '100 replies in order (execAsPipeline), 100 concurrent INCRs in order';
  });

  await check('multi/exec', async () => {
    const res = await c.multi().set(P + 'tx', '1').incr(P + 'tx').get(P + 'tx').exec();
    assert.deepEqual(res, ['OK', 2, '2']);
    // a command error inside EXEC rejects with MultiErrorReply; the other commands still apply
    await assert.rejects(c.multi().lPush(P + 'tx', 'x').incr(P + 'tx').exec(), (e) => {
      assert.ok(e instanceof MultiErrorReply, `${e}`);
      assert.deepEqual(e.errorIndexes, [0]);
      assert.match(String(e.replies[0]), /WRONGTYPE/);
      assert.equal(e.replies[1], 3);
      return true;
    });
  });

  // WATCH needs its own connection in node-redis v4: executeIsolated() lends one from the
  // client's isolation pool (a second connection through the proxy).
  await check('watch: untouched key commits', async () => {
    const res = await c.executeIsolated(async (iso) => {
      assert.equal(await iso.watch(P + 'w'), 'OK');
      assert.equal(await iso.get(P + 'w'), null);
      return iso.multi().set(P + 'w', 'first').exec();
    });
    assert.deepEqual(res, ['OK']);
  });

  await check('watch: conflicting write aborts exec', async () => {
    await assert.rejects(c.executeIsolated(async (iso) => {
      assert.equal(await iso.watch(P + 'w'), 'OK');
      assert.equal(await iso.get(P + 'w'), 'first');
      assert.equal(await other.set(P + 'w', 'theirs'), 'OK'); // from another connection
      return iso.multi().set(P + 'w', 'mine').exec();
    }), (e) => {
      assert.ok(e instanceof WatchError, `expected WatchError, got ${e && e.stack ? e.stack : e}`);
      return true;
    });
    assert.equal(await c.get(P + 'w'), 'theirs');
    return 'exec() threw WatchError';
  });

  await check('blpop with a producer 200 ms later', async () => {
    const consumer = c.duplicate({ name: 'it-node-redis-consumer' });
    consumer.on('error', (e) => clientErrors.push(`consumer: ${e.message}`));
    await consumer.connect();
    const t0 = Date.now();
    const popped = consumer.blPop(P + 'queue', 5);
    await sleep(200);
    assert.equal(await other.rPush(P + 'queue', 'job-1'), 1);
    assert.deepEqual({ ...(await popped) }, { key: P + 'queue', element: 'job-1' });
    const waited = Date.now() - t0;
    assert.ok(waited >= 180, `BLPOP returned after ${waited} ms, before the push`);
    // an empty list times out with nil
    const t1 = Date.now();
    assert.equal(await consumer.blPop(P + 'queue', 0.2), null);
    const timedOut = Date.now() - t1;
    assert.ok(timedOut >= 150, `BLPOP 0.2 returned after ${timedOut} ms`);
    assert.equal(await consumer.quit(), 'OK');
    return `popped after ${waited} ms; empty BLPOP 0.2 -> nil after ${timedOut} ms`;
  });

  await check('pub/sub: subscriber receives in order, unsubscribe', async () => {
    const sub = c.duplicate({ name: 'it-node-redis-sub' });
    await sub.connect();
    const got = [];
    await sub.subscribe(P + 'ch', (msg, ch) => got.push(`${ch}:${msg}`));
    for (let i = 0; i < 5; i++) assert.equal(await c.publish(P + 'ch', `m${i}`), 1);
    for (let t = 0; t < 100 && got.length < 5; t++) await sleep(20);
    assert.deepEqual(got, [0, 1, 2, 3, 4].map((i) => `${P}ch:m${i}`));
    await sub.unsubscribe(P + 'ch');
    assert.equal(await sub.ping(), 'PONG');
    await sub.quit();
    return `${got.length} messages, then PING on the same connection`;
  });

  await check('eval (token bucket, 2 keys)', async () => {
    const keys = [P + 'bucket:tokens', P + 'bucket:ts'];
    const now = 1700000000000;
    const got = [];
    for (let i = 0; i < 6; i++) {
      got.push(await c.eval(BUCKET, { keys, arguments: bucketArgs(now, 1) }));
    }
    assert.deepEqual(got, [[1, 4], [1, 3], [1, 2], [1, 1], [1, 0], [0, 0]]);
    assert.deepEqual(await c.eval(BUCKET, { keys, arguments: bucketArgs(now + 2000, 1) }), [1, 1]);
    assert.equal(await c.get(keys[0]), '1');
    return '5 allowed, 6th refused, refill after 2 s';
  });

  await check('script load/evalsha', async () => {
    const keys = [P + 'bucket:tokens', P + 'bucket:ts'];
    const sha = await c.scriptLoad(BUCKET);
    assert.equal(sha, crypto.createHash('sha1').update(BUCKET).digest('hex'));
    assert.deepEqual(await c.scriptExists(sha), [true]);
    assert.deepEqual(await c.evalSha(sha, { keys, arguments: bucketArgs(1700000002000, 2) }),
      [0, 1]);
    assert.deepEqual(await c.evalSha(sha, { keys, arguments: bucketArgs(1700000003000, 2) }),
      [1, 0]);
    await assert.rejects(c.evalSha('0'.repeat(40)), /NOSCRIPT/);
    return `sha ${sha.slice(0, 12)}...`;
  });

  await check('select db 3', async () => {
    const db3 = client({ name: 'it-node-redis-db3', database: 3 });
    await db3.connect();
    assert.equal(await db3.set(P + 'db', 'in-db-3'), 'OK');
    assert.equal(await db3.get(P + 'db'), 'in-db-3');
    assert.equal(await c.get(P + 'db'), null, 'a db-0 client sees the db-3 key');
    assert.equal(await c.exists(P + 'db'), 0);
    assert.equal(await c.set(P + 'db', 'in-db-0'), 'OK');
    assert.equal(await db3.get(P + 'db'), 'in-db-3');
    assert.equal(await db3.del(P + 'db'), 1);
    assert.equal(await db3.quit(), 'OK');
  });

  await check('cleanup and quit', async () => {
    const left = [];
    for await (const k of c.scanIterator({ MATCH: P + '*', COUNT: 100 })) left.push(k);
    if (left.length) await c.del(left);
    assert.equal(await c.quit(), 'OK'); // also closes the isolation pool's connections
    assert.equal(await other.quit(), 'OK');
    assert.deepEqual(clientErrors, [], 'error events on the clients');
  });

  clearTimeout(session.total);
  console.log(`node-redis session: all ${session.passed} checks passed`);
}

main().catch((e) => {
  console.error(`FAIL: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});

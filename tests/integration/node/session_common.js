'use strict';
// What both client sessions share: the PORT argument, the overall and per-step timeouts, the
// check() runner that prints "ok   name: detail" or "FAIL name: why" and exits, and the
// token-bucket script. Exit codes: 0 every check held, 1 a check failed, 2 a timeout, 64 usage.

const STEP_TIMEOUT_MS = 5000;
const TOTAL_TIMEOUT_MS = 20000;

class StepTimeout extends Error {}

function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new StepTimeout(`${what}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// Parses argv, arms the overall timeout and returns the session's tools. `label` names the
// library in the key prefix (several runs may share one redis).
function startSession(label) {
  const port = Number(process.argv[2]);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    console.error(`usage: node ${process.argv[1]} PORT (got ${JSON.stringify(process.argv[2])})`);
    process.exit(64);
  }
  const total = setTimeout(() => {
    console.error(`timeout: the whole session took more than ${TOTAL_TIMEOUT_MS} ms`);
    process.exit(2);
  }, TOTAL_TIMEOUT_MS);
  const clientErrors = [];
  const s = {
    port,
    total,
    P: `it:${label}:${process.pid}:`,
    clientErrors,
    passed: 0,
    async check(name, fn) {
      let detail;
      try {
        detail = await withTimeout(Promise.resolve().then(fn), STEP_TIMEOUT_MS, name);
      } catch (e) {
        const why = e instanceof StepTimeout || !(e && e.stack) ? String(e.message || e) : e.stack;
        console.error(`FAIL ${name}: ${why}`);
        if (clientErrors.length) console.error(`client error events: ${clientErrors.join('; ')}`);
        process.exit(e instanceof StepTimeout ? 2 : 1);
      }
      s.passed++;
      console.log(`ok   ${name}${detail ? ': ' + detail : ''}`);
    },
  };
  return s;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Token bucket: KEYS[1] tokens, KEYS[2] last refill (ms); ARGV capacity, tokens/s, now (ms),
// tokens wanted. Returns {allowed (0/1), tokens left}.
const BUCKET = `
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local tokens = tonumber(redis.call('GET', KEYS[1]) or capacity)
local last = tonumber(redis.call('GET', KEYS[2]) or now)
tokens = math.min(capacity, tokens + math.floor((now - last) * rate / 1000))
local allowed = 0
if tokens >= want then
  tokens = tokens - want
  allowed = 1
end
redis.call('SET', KEYS[1], tokens, 'PX', 60000)
redis.call('SET', KEYS[2], now, 'PX', 60000)
return {allowed, tokens}
`;

module.exports = { startSession, sleep, BUCKET };

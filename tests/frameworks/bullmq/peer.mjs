// BullMQ as a test peer: build a queue state with BullMQ's own API, then count it
// with getJobCounts / getDelayedCount / isPaused. JSON lines on stdin/stdout, as
// tests/frameworks/peer.py (one request per line: framework, url, settings, state).
import readline from "node:readline";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";

function connection(url) {
  const u = new URL(url);
  const options = { host: u.hostname, port: Number(u.port), db: Number(u.pathname.slice(1) || 0) };
  if (u.password) options.password = decodeURIComponent(u.password);
  return new Redis({ ...options, maxRetriesPerRequest: null });
}

// What the previous request built stays (a worker holding active jobs) until the next.
let held = [];
async function letGo() {
  for (const each of held.reverse()) await each.close();
  held = [];
}

async function until(condition) {
  for (let i = 0; i < 5000 && !condition(); i++) await new Promise((r) => setTimeout(r, 1));
  if (!condition()) throw new Error("condition not reached");
}

async function build(url, settings, state) {
  const client = connection(url);
  held.push({ close: () => client.quit() });
  const opts = { connection: client };
  if (settings.prefix != null) opts.prefix = settings.prefix;
  const queue = new Queue(settings.queue, opts);
  const other = new Queue(settings.queue + "-other", opts);
  held.push(queue, other);
  await client.flushdb();
  {
    if (state.retries) {
      // jobs that fail with attempts left: BullMQ moves them to delayed for their backoff
      for (let i = 0; i < state.retries; i++) {
        await queue.add("flaky", {}, { attempts: 3, backoff: { type: "fixed", delay: 3600_000 } });
      }
      const failing = new Worker(settings.queue, null, { ...opts, autorun: false });
      for (let i = 0; i < state.retries; i++) {
        const job = await failing.getNextJob(`retry-${i}`, { block: false });
        if (!job) throw new Error("bullmq: no job to fail");
        await job.moveToFailed(new Error("flaky"), `retry-${i}`);
      }
      await failing.close();
    }
    for (let i = 0; i < state.active; i++) await queue.add("held", {});
    if (state.active) {
      const worker = new Worker(settings.queue, null, { ...opts, autorun: false });
      held.push(worker);
      for (let i = 0; i < state.active; i++) {
        const job = await worker.getNextJob(`token-${i}`, { block: false });
        if (!job) throw new Error("bullmq: no job to hold");
      }
    }
    for (let i = 0; i < state.ready; i++) await queue.add("ready", {});
    for (let i = 0; i < state.prioritized; i++) await queue.add("prio", {}, { priority: 1 + (i % 5) });
    let dueBy = 0;
    for (let i = 0; i < state.due; i++) {
      await queue.add("due", {}, { delay: 1 });
      dueBy = Date.now() + 1;
    }
    await until(() => Date.now() > dueBy);
    for (let i = 0; i < state.future; i++) await queue.add("later", {}, { delay: 3600_000 });
    for (let i = 0; i < state.other; i++) await other.add("elsewhere", {});
    if (state.paused) await queue.pause();
    const c = await queue.getJobCounts("wait", "prioritized", "active", "delayed", "paused");
    const due = await queue.getDelayedCount(Date.now() + 1);
    const startable = c.wait + c.prioritized + due;
    const paused = await queue.isPaused();
    // when the oldest ready job became ready (its timestamp plus its delay): every
    // waiting job, the prioritized job BullMQ hands out next, the due delayed jobs
    let oldest = null;
    if (!paused) {
      const now = Date.now();
      const waiting = await queue.getWaiting();
      const next = await queue.getPrioritized(0, 0);
      const delayed = (await queue.getDelayed()).filter((job) => job.timestamp + job.delay <= now);
      for (const job of [...waiting, ...next, ...delayed]) {
        const at = (job.timestamp + (job.delay || 0)) / 1000;
        if (oldest === null || at < oldest) oldest = at;
      }
    }
    return {
      ready: paused ? 0 : startable,
      scheduled: c.delayed - due,
      active: c.active,
      paused: paused ? startable + c.paused : c.paused,
      oldest,
    };
  }
}

// "enqueue": add a job per item (the example worker's data), nothing flushed; answer
// BullMQ's count of unfinished jobs. The connection stays for later requests.
async function enqueue(url, settings, items) {
  const client = connection(url);
  const queue = new Queue(settings.queue, { connection: client });
  try {
    for (const item of items) await queue.add("record", { item });
    const c = await queue.getJobCounts("wait", "prioritized", "delayed", "active", "paused");
    return c.wait + c.prioritized + c.delayed + c.active + c.paused;
  } finally {
    await queue.close();
    await client.quit();
  }
}

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  let answer;
  try {
    const request = JSON.parse(line);
    if (request.op === "enqueue") {
      answer = { unfinished: await enqueue(request.url, request.settings, request.items) };
    } else {
      await letGo();
      answer = { counts: await build(request.url, request.settings, request.state) };
    }
  } catch (err) {
    answer = { error: String(err && err.stack ? err.stack : err) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
process.exit(0);

// The BullMQ worker of examples/bullmq-scaledjob.yaml: process the queue's jobs, and
// exit once the queue is drained, so each Kubernetes Job ends when the work does.
// With KEEP_RUNNING=1 (a Deployment scaled by a ScaledObject) it waits for more work.
//   QUEUE_NAME, REDIS_ADDRESS (host:port), REDIS_PASSWORD (optional), KEEP_RUNNING
const { Worker } = require("bullmq");

const [host, port] = (process.env.REDIS_ADDRESS || "127.0.0.1:6379").split(":");
const connection = { host, port: Number(port), password: process.env.REDIS_PASSWORD };

const worker = new Worker(
  process.env.QUEUE_NAME || "jobs",
  async (job) => {
    console.log(`done ${job.data.item}`); // the work: here, print the item
  },
  { connection, concurrency: 4 },
);
if (!process.env.KEEP_RUNNING) {
  worker.on("drained", async () => {
    await worker.close();
    process.exit(0);
  });
}
worker.on("error", (err) => {
  console.error(err);
  process.exit(1);
});

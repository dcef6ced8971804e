// The BullMQ worker of examples/bullmq-scaledjob.yaml: process the queue's jobs, and
// exit once the queue is drained, so each Kubernetes Job ends when the work does.
//   QUEUE_NAME, REDIS_ADDRESS (host:port), REDIS_PASSWORD (optional)
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
worker.on("drained", async () => {
  await worker.close();
  process.exit(0);
});
worker.on("error", (err) => {
  console.error(err);
  process.exit(1);
});

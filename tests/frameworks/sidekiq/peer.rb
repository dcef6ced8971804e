# Sidekiq as a test peer: build a queue state with Sidekiq's own client and job sets
# (and a real Sidekiq process for jobs in progress), then count it with
# Sidekiq::Queue#size, ScheduledSet, RetrySet and WorkSet. JSON lines on stdin/stdout,
# as tests/frameworks/peer.py.
require "json"
require "securerandom"
require "sidekiq"
require "sidekiq/api"

Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

HOUR = 3600
JOBS = File.expand_path("jobs.rb", __dir__)
$held = []

def payload(queue)
  { "queue" => queue, "class" => "PeerJob", "args" => [], "jid" => SecureRandom.hex(12),
    "retry" => true, "retry_count" => 0, "created_at" => Time.now.to_f }
end

def wait_until(seconds)
  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
  until yield
    raise "condition not reached in #{seconds} s" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
    sleep 0.05
  end
end

def busy(queue)
  Sidekiq::WorkSet.new.count { |_process, _thread, work| work["queue"] == queue }
end

def build(url, settings, state)
  Sidekiq.configure_client { |config| config.redis = { url: url } }
  Sidekiq.redis(&:flushdb)
  q = settings["queue"]
  other = "#{q}-other"
  if state["active"] > 0
    state["active"].times { Sidekiq::Client.push("queue" => q, "class" => "HoldJob", "args" => []) }
    pid = Process.spawn({ "REDIS_URL" => url }, "sidekiq", "-r", JOBS, "-q", q,
                        "-c", state["active"].to_s, out: File::NULL, err: File::NULL)
    $held << -> { Process.kill("KILL", pid); Process.wait(pid) }
    wait_until(60) { busy(q) == state["active"] } # a heartbeat every 5 s writes the WorkSet
  end
  state["ready"].times { Sidekiq::Client.push("queue" => q, "class" => "PeerJob", "args" => []) }
  state["due"].times { Sidekiq::Client.push("queue" => q, "class" => "PeerJob", "args" => [], "at" => Time.now.to_f - HOUR) }
  state["future"].times { Sidekiq::Client.push("queue" => q, "class" => "PeerJob", "args" => [], "at" => Time.now.to_f + HOUR) }
  retries = Sidekiq::RetrySet.new
  state["retry_due"].times { retries.schedule(Time.now - HOUR, payload(q)) }
  state["retry_future"].times { retries.schedule(Time.now + HOUR, payload(q)) }
  state["other"].times do
    Sidekiq::Client.push("queue" => other, "class" => "PeerJob", "args" => [])
    Sidekiq::Client.push("queue" => other, "class" => "PeerJob", "args" => [], "at" => Time.now.to_f - HOUR)
    Sidekiq::Client.push("queue" => other, "class" => "PeerJob", "args" => [], "at" => Time.now.to_f + HOUR)
    retries.schedule(Time.now - HOUR, payload(other))
  end
  now = Time.now.to_f
  sets = [Sidekiq::ScheduledSet.new, Sidekiq::RetrySet.new]
  due = sets.sum { |set| set.count { |entry| entry.queue == q && entry.score <= now } }
  later = sets.sum { |set| set.count { |entry| entry.queue == q && entry.score > now } }
  # when the oldest ready job became ready: a queued job's enqueued_at, a due
  # scheduled or retried job's time (its score)
  times = Sidekiq::Queue.new(q).map { |job| job.enqueued_at.to_f }
  sets.each { |set| set.each { |entry| times << entry.score if entry.queue == q && entry.score <= now } }
  { "ready" => Sidekiq::Queue.new(q).size + due, "scheduled" => later, "active" => busy(q),
    "oldest" => times.min }
end

# "enqueue": a RecordJob (examples/frameworks/sidekiq_app.rb) per item, nothing flushed;
# answers Sidekiq's count of the queue's unfinished work (queued and in progress).
def enqueue(url, settings, items)
  Sidekiq.configure_client { |config| config.redis = { url: url } }
  q = settings["queue"]
  items.each { |item| Sidekiq::Client.push("class" => "RecordJob", "queue" => q, "args" => [item]) }
  Sidekiq::Queue.new(q).size + busy(q)
end

$stdout.sync = true
$stdin.each_line do |line|
  $held.pop.call until $held.empty?
  begin
    request = JSON.parse(line)
    answer = if request["op"] == "enqueue"
               { "unfinished" => enqueue(request["url"], request["settings"], request["items"]) }
             else
               { "counts" => build(request["url"], request["settings"], request["state"]) }
             end
  rescue StandardError => e
    answer = { "error" => "#{e.class}: #{e.message}\n#{e.backtrace.first(8).join("\n")}" }
  end
  $stdout.write(JSON.generate(answer) + "\n")
end
$held.pop.call until $held.empty?

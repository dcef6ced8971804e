# Sidekiq's job for the worker Deployment of the ScaledObject tests:
#   sidekiq -r ./sidekiq_app.rb -q $SIDEKIQ_QUEUE -c 1
# runs RecordJob (the work: print the item). REDIS_ADDRESS (host:port) and
# REDIS_PASSWORD come from the Pod's env.
require "sidekiq"

password = ENV.fetch("REDIS_PASSWORD", "")
auth = password.empty? ? "" : ":#{password}@"
Sidekiq.configure_server do |config|
  config.redis = { url: "redis://#{auth}#{ENV.fetch('REDIS_ADDRESS', '127.0.0.1:6379')}/0" }
end

class RecordJob
  include Sidekiq::Job

  def perform(item)
    $stdout.puts "done #{item}"
    $stdout.flush
  end
end

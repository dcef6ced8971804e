# The jobs a real Sidekiq process runs for the peer: HoldJob stays in progress (the
# peer kills the process), so Sidekiq's WorkSet shows it.
require "sidekiq"

class HoldJob
  include Sidekiq::Worker

  def perform
    sleep 3600
  end
end

class PeerJob
  include Sidekiq::Worker

  def perform; end
end

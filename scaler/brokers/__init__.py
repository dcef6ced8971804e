"""One folder per broker: ``metadata.py`` (typed keys, KEDA's parsing, the query; no
I/O, no client library) and ``client.py`` (the reads, over the broker's client
library, its errors turned into ours). ``pool.py`` bounds the clients of all of them;
``tlsfiles.py`` turns TriggerAuthentication TLS material into contexts and files.

Adding a broker is a folder here and its rows in :mod:`scaler.registry`.
"""
